"""``python -m tests.loopback openai|anthropic|bedrock [--port N]``: one loopback provider as a process.

Prints ``ready <port>`` once serving, answers every request with the default reply, and stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal

from tests.loopback import AnthropicServer, BedrockServer, LoopbackServer, OpenAIServer

SERVERS: dict[str, type[LoopbackServer]] = {
    "openai": OpenAIServer,
    "anthropic": AnthropicServer,
    "bedrock": BedrockServer,
}


def main(argv: list[str] | None = None) -> None:
    """Serve one provider until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tests.loopback", description=__doc__)
    parser.add_argument("provider", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    args = parser.parse_args(argv)
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the server thread exists, so the thread inherits the mask and only sigwait receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with SERVERS[args.provider](port=args.port) as server:
        print(f"ready {server.port}", flush=True)
        signal.sigwait(stop_signals)


if __name__ == "__main__":
    main()
