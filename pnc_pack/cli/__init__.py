"""The ``pnc-pack`` command line: one thin function per command over the public API.

Commands are imported lazily, so ``pnc-pack inspect`` and ``pnc-pack verify`` never import torch. Each entry of
``COMMANDS`` maps a command name to ``"module:attribute"`` inside this package; the attribute is a click command.
"""

from __future__ import annotations

import importlib

import click

from pnc_pack.cli._common import run_main

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by `pnc-pack --help` without importing the module)
    "inspect": ("pnc_pack.cli.format_cmds:inspect_cmd", "Show what a clone delta holds."),
    "verify": ("pnc_pack.cli.format_cmds:verify_cmd", "Check a clone delta: structure, digest, signatures, refs."),
    "keygen": ("pnc_pack.cli.format_cmds:keygen_cmd", "Create an Ed25519 signing key pair."),
    "sign": ("pnc_pack.cli.format_cmds:sign_cmd", "Add a signature to a clone delta."),
    "train": ("pnc_pack.cli.train_cmd:train_cmd", "Train a zoo model on some classes (a pretrained-model folder)."),
    "build": ("pnc_pack.cli.build_cmd:build_cmd", "Run Partial Network Cloning and write a clone delta."),
    "add": ("pnc_pack.cli.compose_cmds:add_cmd", "Add a module (another source's classes) to a clone delta."),
    "remove": ("pnc_pack.cli.compose_cmds:remove_cmd", "Remove modules from a clone delta, leaving the others as they are."),
    "eval": ("pnc_pack.cli.eval_cmd:eval_cmd", "Evaluate a clone delta: Ori / Tar / Avg and per functionality."),
    "apply": ("pnc_pack.cli.apply_cmd:apply_cmd", "Rebuild the cloned model; export, repair, evaluate."),
    "push": ("pnc_pack.cli.hub_cmds:push_cmd", "Upload a clone delta to the Hugging Face Hub."),
    "pull": ("pnc_pack.cli.hub_cmds:pull_cmd", "Download and verify a clone delta from the Hub."),
    "zoo": ("pnc_pack.cli.hub_cmds:zoo_group", "Publish pretrained-model folders to the Hub."),
    "demo": ("pnc_pack.cli.demo_cmd:demo_cmd", "Train, clone, sign, ship and apply on MNIST, end to end."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not implemented in this build
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pnc-pack", prog_name="pnc-pack")
def cli():
    """pnc-pack: Partial Network Cloning and the clone-delta format.

    Exit codes: 0 ok, 1 internal error, 2 usage, 3 malformed or tampered input, 4 signature policy failed,
    5 referenced model missing or not matching its pins, 6 incompatible architecture, 7 build failed,
    10-15 hub errors (10 generic, 11 not found, 12 unauthorised, 13 connection, 14 offline and not cached,
    15 concurrent push conflict).
    """


def main(argv=None):
    from pnc_pack.data.specs import set_hub_resolver
    from pnc_pack.hub.datasets import fetch_dataset

    set_hub_resolver(fetch_dataset)  # hf:ORG/NAME[@REV] data specs, in every command that takes --data
    return run_main(cli, argv)
