"""One router per concern of the console; `central.web.app` includes them in this order."""
