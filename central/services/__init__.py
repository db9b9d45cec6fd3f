"""Central's business rules, one function per rule, used by the web console and the ingester alike.

- `access`: who may see a report and which actions they may take on it.
- `review`: confirm, reject, forward, resolve, reopen, publish; the confirm -> forward -> alert
  chain (written once, also run by the ingester's auto-review).
- `views`: a report as the console and the API show it (texts, evidence, operations data).
- `health`: the nodes' and cameras' live state from their typed status messages.
- `metrics`: the Prometheus collector behind `/metrics`.

No FastAPI here: a service takes a database session (or a session factory) and plain values, and
raises `central.workflow.WorkflowError` (with the HTTP status that says why) when a rule says no.
"""
