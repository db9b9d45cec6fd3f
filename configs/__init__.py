"""Shipped configs: central's default config, the routing table, report texts, example node and camera
configs. A package only so that they install with the wheel (contract.paths.packaged_config).
"""
