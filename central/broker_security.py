"""Broker access control for a deployment: one account per node, central, police client and
signal controller, enforced by Mosquitto's dynamic-security plugin, and TLS.

The default form is the plugin's config (`dynamic-security.json`): it binds every account but
central's to one client id, its name (a node's `mqtt.client_id` is its node id), so a stolen
credential cannot take over central's or another account's session, and it checks subscriptions, so a node cannot join central's
`$share` group. `--acl-file` writes the older password file + ACL instead, which can do neither
(Mosquitto's ACL file grants every SUBSCRIBE and checks reads only at delivery). Why: docs/security.md.

- Each edge node logs in as its node id and may publish only under `<prefix>/<node id>/`, and
  read only its own signal-controller topics and its cameras' debug-recording requests
  (`<prefix>/<node id>/+/debug/record`); it cannot read other nodes' topics.
- Central logs in as `central`: it reads everything under `<prefix>/` and publishes police alerts
  (`<prefix>/alerts/#`) and debug-recording requests (`<prefix>/+/+/debug/record`), nothing else.
- A police client (`--police NAME[:PLACE]`) may only read alerts: one place's
  (`<prefix>/alerts/<place slug>/#`; the place is a routing area code or a ward, as
  central.workflow.alert_scope names an alert's topic; a legacy district label still works) or,
  without a place, all of them.
- A signal controller (`--controller NAME:NODE`) may only publish its node's signal heads
  (`<prefix>/<node>/+/signal/+`).
- Names are reserved: `central`, `alerts` (a node named `alerts` would publish police alerts),
  names starting with `central` (central's client ids), a name used by another account, and
  anything that is not an id (`contract.events.ID_PATTERN`: no `/`, `+`, `#`, `$`).
- TLS: `generate_test_pki` makes a CA and a server certificate for a test deployment (openssl);
  production uses the city's own PKI.
Secrets are written to files (mode 600) outside the repository, or come from the environment.

`python -m central.broker_security --out DIR --node node-1 --node node-2 [--police hue:thanh-pho-hue]
[--controller ctl-1:node-1]` writes the broker's dynamic-security config (or password file and
ACL), certificates and one password file per user into DIR, and prints the mosquitto.conf lines.
`--rotate NAME` / `--revoke NAME` change one account in DIR's existing config (restart the broker).
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from central.workflow import district_slug
from contract.events import ID_PATTERN
from contract.topics import DEFAULT_PREFIX

CENTRAL_USER = "central"
# Names no account may take: central's, and the first level of the topic tree that is not a node.
RESERVED_NAMES = frozenset({CENTRAL_USER, "alerts"})
# Nor a name starting like central's client ids (`central-<host>-<pid>`, or a configured one that
# starts so): every other account's client id is its name, which must never be one of central's.
RESERVED_PREFIX = CENTRAL_USER

Role = Literal["central", "node", "police", "controller"]


class AccountError(ValueError):
    """An account the broker must not have (a reserved, duplicate or unsafe name); the message says why."""


@dataclass(frozen=True)
class Account:
    """One broker user. `scope`: a police client's district slug (None: every district), a
    signal controller's node id; unused for central and nodes (a node's scope is its own name)."""

    name: str
    role: Role
    scope: str | None = None
    client_id: str | None = None  # dynamic security: the one client id this user may connect with

    def dynsec_acls(self, prefix: str, share_group: str) -> list[dict[str, Any]]:
        """The dynamic-security role's ACLs: subscriptions too are checked (a `$share` one is the
        filter itself), so what an account may not read it may not subscribe to either."""

        def acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict[str, Any]:
            return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}

        def read(topic: str) -> list[dict[str, Any]]:
            return [acl("subscribePattern", topic), acl("publishClientReceive", topic)]

        # Above every allow: no account but central's may join a shared subscription.
        deny_share = [acl("subscribePattern", "$share/#", allow=False, priority=100)]
        if self.role == "central":
            return [acl("publishClientSend", f"{prefix}/alerts/#"), acl("publishClientSend", f"{prefix}/+/+/debug/record"),
                    *read(f"{prefix}/#"), *read("$SYS/#"),
                    acl("subscribePattern", f"$share/{share_group}/{prefix}/#")]
        if self.role == "node":
            return [acl("publishClientSend", f"{prefix}/{self.name}/#"), *read(f"{prefix}/{self.name}/+/signal/#"),
                    *read(f"{prefix}/{self.name}/+/debug/record"), *deny_share]
        if self.role == "police":
            return [*read(f"{prefix}/alerts/{self.scope}/#" if self.scope else f"{prefix}/alerts/#"), *deny_share]
        return [acl("publishClientSend", f"{prefix}/{self.scope}/+/signal/+"), *deny_share]

    def acl_lines(self, prefix: str) -> list[str]:
        if self.role == "central":
            return [f"topic read {prefix}/#", f"topic write {prefix}/alerts/#", f"topic write {prefix}/+/+/debug/record",
                    "topic read $SYS/#"]
        if self.role == "node":
            return [f"topic write {prefix}/{self.name}/#", f"topic read {prefix}/{self.name}/+/signal/#",
                    f"topic read {prefix}/{self.name}/+/debug/record"]
        if self.role == "police":
            return [f"topic read {prefix}/alerts/{self.scope or '#'}" + ("/#" if self.scope else "")]
        return [f"topic write {prefix}/{self.scope}/+/signal/+"]


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or re.fullmatch(ID_PATTERN, name) is None:
        raise AccountError(
            f"{what} {name!r} is not a valid id: lower-case letters, digits, '-' and '_', starting with a "
            "letter or digit, at most 64 (no '/', '+', '#' or '$': they are MQTT topic syntax)"
        )
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIX):
        raise AccountError(
            f"{what} {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))} and names starting with "
            f"{RESERVED_PREFIX!r} are not for nodes or clients)"
        )
    return name


def make_accounts(
    nodes: Iterable[str],
    police: Iterable[tuple[str, str | None]] = (),
    controllers: Iterable[tuple[str, str]] = (),
    central_user: str = CENTRAL_USER,
) -> list[Account]:
    """Central's account, then one per node, police client (name, district or None) and signal
    controller (name, node id); raises AccountError for a reserved, unsafe or repeated name, or a
    controller of a node that is not listed."""
    accounts = [Account(central_user, "central")]
    node_ids = [check_name(n, "node id") for n in nodes]
    # Every account but central's may connect only with its own name as client id (a node: its
    # `mqtt.client_id`): never as central or another account, whose session a clean start would wipe.
    accounts += [Account(n, "node", client_id=n) for n in node_ids]
    for name, district in police:
        scope = district_slug(district) if district else None
        accounts.append(Account(check_name(name, "police client"), "police", scope, client_id=name))
    for name, node in controllers:
        if node not in node_ids:
            raise AccountError(f"signal controller {name!r}: node {node!r} is not one of the nodes ({', '.join(node_ids) or 'none'})")
        accounts.append(Account(check_name(name, "signal controller"), "controller", node, client_id=name))
    twice = [name for name, n in Counter(a.name for a in accounts).items() if n > 1]
    if twice:
        raise AccountError(f"{twice[0]!r} is used by two accounts: every node and client needs a name of its own")
    return accounts


class _TlsListener:
    """The TLS listener's lines, for a security whose `cert_file` is set (a test PKI or the city's)."""

    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def tls_lines(self, tls_port: int | None, host: str) -> list[str]:
        if not (self.tls and tls_port):
            return []
        return [
            f"listener {tls_port} {host}",
            f"cafile {self.ca_file}",
            f"certfile {self.cert_file}",
            f"keyfile {self.key_file}",
            "tls_version tlsv1.2",
        ]


@dataclass(frozen=True)
class BrokerSecurity(_TlsListener):
    """A password file and an ACL (`--acl-file`); handed to `LocalMosquitto(security=...)`."""

    password_file: Path
    acl_file: Path
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def mosquitto_lines(self, tls_port: int | None, host: str) -> list[str]:
        lines = ["allow_anonymous false", f"password_file {self.password_file}", f"acl_file {self.acl_file}"]
        return lines + self.tls_lines(tls_port, host)


def find_dynsec_plugin() -> str:
    found = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob("/usr/lib/mosquitto_dynamic_security.so")
    if not found:
        raise RuntimeError("mosquitto's dynamic-security plugin not found: install the Debian package `mosquitto`")
    return found[0]


def dynsec_password(password: str, iterations: int = 101) -> dict[str, Any]:
    """A password as the dynamic-security plugin stores it: PBKDF2-HMAC-SHA512, a 12-byte salt."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(), "iterations": iterations}


def dynsec_config(
    accounts: Sequence[Account], passwords: Mapping[str, str], prefix: str = DEFAULT_PREFIX, share_group: str = "central"
) -> dict[str, Any]:
    """The dynamic-security plugin's config: one client and one role per account; everything not
    allowed is denied (publishing, subscribing and receiving alike)."""
    clients, roles = [], []
    for a in accounts:
        client: dict[str, Any] = {"username": a.name, "textName": a.role, **dynsec_password(passwords[a.name]),
                                  "roles": [{"rolename": a.name}]}
        if a.client_id:
            client["clientid"] = a.client_id
        clients.append(client)
        roles.append({"rolename": a.name, "acls": a.dynsec_acls(prefix, share_group)})
    default = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True}
    return {"defaultACLAccess": default, "clients": clients, "groups": [], "roles": roles}


@dataclass(frozen=True)
class DynsecSecurity(_TlsListener):
    """The dynamic-security plugin and its `config_file` (the generated default; mosquitto
    rewrites the file when administered); handed to `LocalMosquitto(security=...)`."""

    config_file: Path
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def mosquitto_lines(self, tls_port: int | None, host: str) -> list[str]:
        lines = ["allow_anonymous false", f"plugin {find_dynsec_plugin()}", f"plugin_opt_config_file {self.config_file}"]
        return lines + self.tls_lines(tls_port, host)


def acl_text(prefix: str = DEFAULT_PREFIX, accounts: Sequence[Account] | None = None) -> str:
    """Mosquitto's ACL file: one `user` block per account, no `pattern` lines (a pattern applies
    to every user, so it would give police clients and controllers a node's rights)."""
    if accounts is None:
        accounts = make_accounts([])
    blocks = ["# Generated by central.broker_security: who may read and write what; nothing else is allowed."]
    for a in accounts:
        blocks.append("\n".join([f"# {a.role}", f"user {a.name}", *a.acl_lines(prefix)]))
    return "\n\n".join(blocks) + "\n"


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/bin/{binary}" if Path(f"/usr/bin/{binary}").exists() else None)
    if not path:
        raise RuntimeError(f"`{binary}` not found: install the Debian package `{package}`")
    return path


def write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """Mosquitto's hashed password file (mosquitto_passwd), readable by its owner only."""
    tool = _require("mosquitto_passwd", "mosquitto")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    path.chmod(0o600)
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)


def generate_test_pki(folder: Path, common_name: str = "127.0.0.1", days: int = 365) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for `common_name` (also valid for localhost)."""
    openssl = _require("openssl", "openssl")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "server.ext"
    ext.write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{common_name}\n", encoding="utf-8")
    if common_name.replace(".", "").isdigit():
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", str(days), "-subj", "/CN=ioc-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={common_name}")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", str(days), "-extfile", str(ext))
    for p in (ca_key, key):
        p.chmod(0o600)
    return ca_crt, crt, key


def all_passwords(
    central: str,
    nodes: Mapping[str, str],
    police: Mapping[str, tuple[str | None, str]],
    controllers: Mapping[str, tuple[str, str]],
) -> dict[str, str]:
    """user -> password for every account."""
    return {
        CENTRAL_USER: central,
        **nodes,
        **{n: pw for n, (_, pw) in police.items()},
        **{n: pw for n, (_, pw) in controllers.items()},
    }


def broker_files(
    folder: Path,
    node_passwords: Mapping[str, str],
    central_password: str,
    *,
    dynsec: bool = True,
    prefix: str = DEFAULT_PREFIX,
    tls: bool = True,
    police: Mapping[str, tuple[str | None, str]] | None = None,
    controllers: Mapping[str, tuple[str, str]] | None = None,
    share_group: str = "central",
) -> BrokerSecurity | DynsecSecurity:
    """The broker's accounts for central, the nodes, police clients (name -> (district or None,
    password)) and signal controllers (name -> (node id, password)), TLS files with `tls`:
    - `dynsec` (the generated default): the dynamic-security plugin's config; each node bound to
      its client id, subscriptions checked, `$share` only for central (its `share_group`);
    - else a password file and an ACL, which can neither bind client ids nor refuse subscriptions.
    Raises AccountError before writing anything when a name is reserved, unsafe or repeated."""
    accounts = make_accounts(
        node_passwords, [(n, d) for n, (d, _) in (police or {}).items()],
        [(n, node) for n, (node, _) in (controllers or {}).items()],
    )
    passwords = all_passwords(central_password, node_passwords, police or {}, controllers or {})
    folder.mkdir(parents=True, exist_ok=True)
    pki = generate_test_pki(folder / "tls") if tls else (None, None, None)
    if not dynsec:
        write_password_file(folder / "passwords", passwords)
        (folder / "acl").write_text(acl_text(prefix, accounts), encoding="utf-8")
        return BrokerSecurity(folder / "passwords", folder / "acl", *pki)
    config_file = folder / "dynamic-security.json"
    config_file.write_text(json.dumps(dynsec_config(accounts, passwords, prefix, share_group), indent=2), encoding="utf-8")
    config_file.chmod(0o600)
    return DynsecSecurity(config_file, *pki)


def secure_broker_files(folder: Path, node_passwords: Mapping[str, str], central_password: str, **options: Any) -> BrokerSecurity:
    """`broker_files` as a password file and an ACL (`--acl-file`)."""
    sec = broker_files(folder, node_passwords, central_password, dynsec=False, **options)
    assert isinstance(sec, BrokerSecurity)
    return sec


def dynsec_broker_files(folder: Path, node_passwords: Mapping[str, str], central_password: str, **options: Any) -> DynsecSecurity:
    """`broker_files` for the dynamic-security plugin (the default)."""
    sec = broker_files(folder, node_passwords, central_password, dynsec=True, **options)
    assert isinstance(sec, DynsecSecurity)
    return sec


def rotate_account(config_file: Path, name: str, *, revoke: bool = False) -> str | None:
    """In a dynamic-security config: give account `name` a new password (returned), or with
    `revoke` disable it (a stolen box's node: it can no longer log in; None returned). The broker
    reads the file when it starts: restart it. Raises AccountError for an unknown account."""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    client = next((c for c in config.get("clients", []) if c.get("username") == name), None)
    if client is None:
        raise AccountError(f"{config_file} has no account {name!r}")
    password = None
    if revoke:
        client["disabled"] = True
    else:
        password = secrets.token_urlsafe(24)
        client.update(dynsec_password(password))
        client.pop("disabled", None)
    tmp = config_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(config_file)
    return password


def _write_secret(secret_dir: Path, user: str, secret: str) -> Path:
    secret_dir.mkdir(exist_ok=True)
    f = secret_dir / f"{user}.password"
    f.write_text(secret + "\n", encoding="utf-8")
    os.chmod(f, 0o600)
    return f


def _rotate(out: Path, rotate: list[str], revoke: list[str]) -> int:
    config_file = out / "dynamic-security.json"
    try:
        for name in revoke:
            rotate_account(config_file, name, revoke=True)
            print(f"{name}: revoked", file=sys.stderr)
        for name in rotate:
            password = rotate_account(config_file, name)
            assert password is not None
            print(f"{name}: new password in {_write_secret(out / 'secrets', name, password)}", file=sys.stderr)
    except (AccountError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("# restart the broker to apply (it reads dynamic-security.json when it starts)", file=sys.stderr)
    return 0


def _split(value: str, *, need_scope: bool) -> tuple[str, str | None]:
    name, sep, scope = value.partition(":")
    if need_scope and not scope:
        raise AccountError(f"{value!r}: expected NAME:NODE")
    return name, (scope if sep else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m central.broker_security", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="folder for the broker's files and the secrets")
    p.add_argument("--node", action="append", default=[], help="an edge node id (repeat)")
    p.add_argument("--police", action="append", default=[], metavar="NAME[:PLACE]",
                   help="a police client that may only read alerts: one area's or ward's (code, name or slug; "
                        "a legacy district too), else all")
    p.add_argument("--controller", action="append", default=[], metavar="NAME:NODE",
                   help="a signal controller that may only publish NODE's signal heads")
    p.add_argument("--prefix", default=DEFAULT_PREFIX)
    p.add_argument("--share-group", default="central", help="central's shared-subscription group (mqtt.share_group)")
    p.add_argument("--acl-file", action="store_true",
                   help="a password file and ACL instead of the dynamic-security plugin (binds no client ids, "
                        "refuses no subscriptions: a node credential can take over central's session)")
    p.add_argument("--no-tls", action="store_true")
    p.add_argument("--rotate", action="append", default=[], metavar="NAME",
                   help="in DIR's existing dynamic-security.json: a new password for NAME (nothing else changes)")
    p.add_argument("--revoke", action="append", default=[], metavar="NAME",
                   help="in DIR's existing dynamic-security.json: disable NAME (a stolen box's node)")
    args = p.parse_args(argv)
    if args.rotate or args.revoke:
        return _rotate(args.out, args.rotate, args.revoke)

    def password() -> str:
        return secrets.token_urlsafe(24)

    try:
        police = {name: (district, password()) for name, district in (_split(v, need_scope=False) for v in args.police)}
        controllers = {name: (node or "", password()) for name, node in (_split(v, need_scope=True) for v in args.controller)}
        if len(police) < len(args.police) or len(controllers) < len(args.controller) or len(set(args.node)) < len(args.node):
            raise AccountError("a name is given twice: every node and client needs a name of its own")
        users = {n: password() for n in args.node}
        central = password()
        sec = broker_files(
            args.out, users, central, dynsec=not args.acl_file, prefix=args.prefix, tls=not args.no_tls,
            police=police, controllers=controllers, share_group=args.share_group,
        )
    except AccountError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    secret_dir = args.out / "secrets"
    for user, secret in all_passwords(central, users, police, controllers).items():
        _write_secret(secret_dir, user, secret)
    print("\n".join(sec.mosquitto_lines(8883, "0.0.0.0")))
    print(f"# passwords for each user: {secret_dir}/<user>.password (point password_file at them)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
