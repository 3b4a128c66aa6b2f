#!/usr/bin/env python3
"""A real SMTP server for Signoff's tests and benchmarks (aiosmtpd), delivering into a Maildir.

It binds a free loopback port (port 0) and prints that port, alone, as the FIRST line on
stdout; everything else goes to stderr. Each accepted message is delivered once per envelope
recipient into MAILDIR/tmp then renamed into MAILDIR/new, with the trace headers an MTA adds
on top:

    Return-Path: <envelope sender>
    Delivered-To: <envelope recipient>
    X-Original-To: <envelope recipient>
    Received: from <helo> (<peer>) by <authserv-id> with ESMTP[S][A] ...
    Authentication-Results: <authserv-id>; dmarc=<result> header.from=<From domain>; ...

Line ends are stored as LF, as Postfix and Dovecot do.

Flags:
    --maildir DIR            Maildir to deliver into (created if missing). Required.
    --host HOST              address to bind (default 127.0.0.1; ::1 works too).
    --authserv-id ID         authserv-id in Authentication-Results and Received (default mx.signoff.test).
    --dmarc RESULT           dmarc= result written (pass, fail, none; default pass).
    --dkim RESULT            dkim= result written (default pass); `none` leaves it out.
    --no-auth-results        write no Authentication-Results header.
    --tls-cert PEM --tls-key PEM
                             offer STARTTLS with this certificate.
    --require-starttls       refuse MAIL before STARTTLS (needs --tls-cert).
    --implicit-tls           speak TLS from the first byte (smtps://) instead of offering STARTTLS
                             (needs --tls-cert).
    --defer-first N          answer "451 4.3.0 Try again later" to the first N messages (at the end
                             of DATA), then accept.
    --reject-all             answer "550 5.1.1 <rcpt>: Recipient address rejected: User unknown"
                             to every RCPT TO.
    --auth-user USER --auth-password PASS
                             offer AUTH PLAIN/LOGIN and require it (over TLS when --tls-cert is given,
                             else also in plain text, for loopback tests).
    --watch-stdin            exit when stdin reaches EOF (so a dying parent takes the server along).

Each transaction's outcome is logged to stderr as one line:
    smtp_server: <accepted|deferred|rejected> from=<...> to=<...> [file=<...>]
"""
import argparse
import asyncio
import email.utils
import os
import re
import socket
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def log(text):
    print(f"smtp_server: {text}", file=sys.stderr, flush=True)


class MaildirHandler:
    def __init__(self, args):
        self.args = args
        self.maildir = os.path.abspath(args.maildir)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(self.maildir, sub), exist_ok=True)
        self.deferred = 0
        self.counter = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject_all:
            log(f"rejected from={envelope.mail_from} to={address}")
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.deferred < self.args.defer_first:
            self.deferred += 1
            log(f"deferred from={envelope.mail_from} to={','.join(envelope.rcpt_tos)}")
            return "451 4.3.0 Try again later"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        body = raw.replace(b"\r\n", b"\n")
        files = []
        for rcpt in envelope.rcpt_tos:
            trace = self.trace_headers(session, envelope, rcpt, body)
            files.append(self.deliver(trace + body))
        log(f"accepted from={envelope.mail_from} to={','.join(envelope.rcpt_tos)} file={','.join(files)}")
        return "250 2.0.0 Ok: queued"

    def trace_headers(self, session, envelope, rcpt, body):
        a = self.args
        peer = session.peer[0] if session.peer else "unknown"
        proto = "ESMTP" + ("S" if session.ssl else "") + ("A" if session.authenticated else "")
        now = email.utils.formatdate(localtime=False)
        self.counter += 1
        queue_id = f"{int(time.time() * 1000):X}{self.counter:04X}"
        lines = [
            f"Return-Path: <{envelope.mail_from}>",
            f"Delivered-To: {rcpt}",
            f"X-Original-To: {rcpt}",
            f"Received: from {session.host_name or 'unknown'} ({peer} [{peer}])\n\tby {a.authserv_id} (aiosmtpd) with {proto} id {queue_id}\n\tfor <{rcpt}>; {now}",
        ]
        if not a.no_auth_results:
            domain = from_domain(body) or "unknown.invalid"
            parts = [f"{a.authserv_id}"]
            if a.dkim != "none":
                parts.append(f"dkim={a.dkim} header.d={domain}")
            parts.append(f"spf=pass smtp.mailfrom={envelope.mail_from}")
            if a.dmarc != "none":
                parts.append(f"dmarc={a.dmarc} header.from={domain}")
            else:
                parts.append("dmarc=none")
            lines.append("Authentication-Results: " + ";\n\t".join(parts))
        return ("\n".join(lines) + "\n").encode("utf-8")

    def deliver(self, data):
        self.counter += 1
        name = f"{int(time.time())}.M{time.time_ns() % 1000000}P{os.getpid()}Q{self.counter}.{socket.gethostname()},S={len(data)}"
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        final = os.path.join(self.maildir, "new", name)
        os.rename(tmp, final)
        return final


def from_domain(body):
    head = body.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"^From:(.*(?:\n[ \t].*)*)", head, re.MULTILINE | re.IGNORECASE)
    if not m:
        return None
    addresses = email.utils.getaddresses([m.group(1).replace("\n", " ")])
    if not addresses or "@" not in addresses[0][1]:
        return None
    return addresses[0][1].rsplit("@", 1)[1].lower()


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False)


async def main(args):
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    handler = MaildirHandler(args)
    auth = None
    if args.auth_user:
        auth = Authenticator(args.auth_user, args.auth_password or "")

    def factory():
        return SMTP(handler, hostname=args.authserv_id, tls_context=None if args.implicit_tls else tls,
                    require_starttls=args.require_starttls, enable_SMTPUTF8=True,
                    authenticator=auth, auth_required=auth is not None,
                    auth_require_tls=tls is not None and not args.implicit_tls)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host=args.host, port=0, ssl=tls if args.implicit_tls else None)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    log(f"listening on {args.host}:{port}, delivering into {handler.maildir}")
    if args.watch_stdin:
        await loop.run_in_executor(None, sys.stdin.read)
        log("stdin closed; exiting")
        server.close()
        return
    await asyncio.Event().wait()


def parse_args():
    p = argparse.ArgumentParser(description="aiosmtpd server delivering into a Maildir (see the module docstring)")
    p.add_argument("--maildir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--authserv-id", default="mx.signoff.test")
    p.add_argument("--dmarc", default="pass")
    p.add_argument("--dkim", default="pass")
    p.add_argument("--no-auth-results", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--defer-first", type=int, default=0)
    p.add_argument("--reject-all", action="store_true")
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--watch-stdin", action="store_true")
    a = p.parse_args()
    if a.implicit_tls and not a.tls_cert:
        p.error("--implicit-tls needs --tls-cert and --tls-key")
    if a.require_starttls and not a.tls_cert:
        p.error("--require-starttls needs --tls-cert and --tls-key")
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return a


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except KeyboardInterrupt:
        pass
