"""Test-only Serve application (`drover_test_echo:app_builder`): echoes a file named in its args.

Reading `greetingFile` at start proves the executor rewrote the mounted path; `reconfigure` shows
a `user_config` change reaching the same replica process (applied in place).
"""

import os

from ray import serve
from starlette.requests import Request


@serve.deployment
class Echo:
    def __init__(self, greeting_file: str) -> None:
        with open(greeting_file, encoding="utf-8") as fh:
            self.greeting = fh.read().strip()
        self.suffix = ""

    def reconfigure(self, config: dict) -> None:
        self.suffix = str(config.get("suffix", ""))

    async def __call__(self, request: Request) -> dict:
        return {"greeting": self.greeting, "suffix": self.suffix, "pid": os.getpid()}


def app_builder(args: dict):
    return Echo.bind(args["greetingFile"])
