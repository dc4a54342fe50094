"""A local SMTP server for the email tests, on aiosmtpd (aio-libs): STARTTLS required before
AUTH, one user and password, the first N messages refused with a transient 451, the rest
appended to a file as JSON lines {"from", "to", "data"}. Prints "listening PORT" once ready.

    python smtp_sink.py --cert server.pem --key server.key --user u --password p \
        --fail-first 2 --out messages.jsonl
"""
import argparse
import json
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    lock = threading.Lock()
    refused = [0]

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            with lock:
                if refused[0] < args.fail_first:
                    refused[0] += 1
                    return "451 4.3.0 Try again later"
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps({
                        "from": envelope.mail_from,
                        "to": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                    }) + "\n")
            return "250 2.0.0 Accepted"

    # The controller connects to its own port to check it is up, so it needs a real one.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    print(f"listening {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
