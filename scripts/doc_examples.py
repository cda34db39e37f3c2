#!/usr/bin/env python3
"""Runs the runnable examples of drvm's guides and checks that they still do what they show.

A runnable example is a fenced block whose info string is `console doc-test`:

    ```console doc-test
    $ drvm run build/guest/hello.elf; echo "status $?"
    drvm guestfw: hello from the guest
    status 1
    $ drvm run build/guest/countwork.elf --event mem:cw_counter:w --json   # status 1
    ```

Each `$ ` line is run by bash in a scratch directory laid out like a build tree (build/bin,
build/guest, the sources' guestfw/), with build/bin first on PATH. The lines after it, up to the
next `$ ` line, are its expected stdout (`...` stands for any number of lines); none means stdout
is not checked. The expected status is 0, or N when the command ends with `# status N`.
README.md's first command is checked by its run part: the `build/bin/drvm run ...` step of the
set-up line, with the status its comment names.

Exit status: 0 all examples passed, 1 one failed (each failure is described), 77 /dev/kvm is
missing (the examples boot guests), 2 usage error.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

GUIDES = ["docs/user-guide.md", "docs/testing-guide.md", "docs/events-guide.md"]
FENCE = re.compile(r"^```console doc-test\s*$")
STATUS = re.compile(r"#\s*status\s+(\d+)\s*$")


class Example:
    def __init__(self, where, command, expected_out, status):
        self.where = where  # "docs/user-guide.md:23"
        self.command = command
        self.expected_out = expected_out  # list of lines, or None
        self.status = status


def guide_examples(source, guide):
    examples = []
    lines = open(os.path.join(source, guide), encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            i += 1
            continue
        i += 1
        current = None
        while i < len(lines) and not lines[i].startswith("```"):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                match = STATUS.search(command)
                current = Example(f"{guide}:{i + 1}", command, [],
                                  int(match.group(1)) if match else 0)
                examples.append(current)
            elif current is None:
                sys.exit(f"doc_examples: {guide}:{i + 1}: a doc-test block starts with '$ COMMAND'")
            else:
                current.expected_out.append(line)
            i += 1
        i += 1
    for example in examples:
        if not example.expected_out:
            example.expected_out = None
    return examples


def readme_example(source):
    lines = open(os.path.join(source, "README.md"), encoding="utf-8").read().split("\n")
    start = lines.index("```sh")
    comment, command = None, None
    for j, line in enumerate(lines[start + 1:], start + 2):
        if line.startswith("#"):
            comment = line
            continue
        command = line
        break
    runs = [part.strip() for part in command.split("&&") if part.strip().startswith("build/bin/drvm run")]
    if len(runs) != 1:
        sys.exit("doc_examples: README.md's first command has no 'build/bin/drvm run' step")
    status = re.search(r"exit status (\d+)", comment or "")
    if not status:
        sys.exit("doc_examples: README.md's first comment names no 'exit status N'")
    return Example(f"README.md:{j}", runs[0], None, int(status.group(1)))


def matches(expected, actual):
    pattern = ""
    for line in expected:
        pattern += r"(?:.*\n)*?" if line == "..." else re.escape(line) + r"\n"
    return re.fullmatch(pattern, actual) is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="the repository root")
    parser.add_argument("--drvm", required=True, help="the drvm executable")
    parser.add_argument("--guest-dir", required=True, help="the built guest images (build/guest)")
    parser.add_argument("--list", action="store_true", help="print the examples, run nothing")
    args = parser.parse_args()

    examples = []
    for guide in GUIDES:
        found = guide_examples(args.source, guide)
        if not found:
            print(f"doc_examples: {guide} has no 'console doc-test' block", file=sys.stderr)
            return 1
        examples += found
    examples.append(readme_example(args.source))
    if args.list:
        for example in examples:
            print(f"{example.where}: [status {example.status}] {example.command}")
        return 0
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("doc_examples: SKIP: /dev/kvm is missing or not accessible; the examples boot guests")
        return 77

    failures = 0
    with tempfile.TemporaryDirectory(prefix="drvm-doc-examples-") as scratch:
        os.makedirs(os.path.join(scratch, "build"))
        os.symlink(os.path.dirname(os.path.abspath(args.drvm)), os.path.join(scratch, "build/bin"))
        os.symlink(os.path.abspath(args.guest_dir), os.path.join(scratch, "build/guest"))
        os.symlink(os.path.join(os.path.abspath(args.source), "guestfw"),
                   os.path.join(scratch, "guestfw"))
        env = dict(os.environ)
        env.pop("DRVM_GUEST_DIR", None)
        env["PATH"] = os.path.join(scratch, "build/bin") + os.pathsep + env.get("PATH", "")
        for example in examples:
            try:
                run = subprocess.run(["bash", "-c", example.command], cwd=scratch, env=env,
                                     stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                     timeout=120)
                status, out, err = run.returncode, run.stdout, run.stderr
            except subprocess.TimeoutExpired:
                status, out, err = "timeout (120 s)", "", ""
            problems = []
            if status != example.status:
                problems.append(f"status {status}, the guide shows {example.status}")
            if example.expected_out is not None and not matches(example.expected_out, out):
                problems.append("stdout differs from the guide:\n  expected:\n    " +
                                "\n    ".join(example.expected_out) + "\n  actual:\n    " +
                                "\n    ".join(out.split("\n")))
            if problems:
                failures += 1
                print(f"FAIL {example.where}: $ {example.command}")
                for problem in problems:
                    print(f"  {problem}")
                if err:
                    print("  stderr:\n    " + "\n    ".join(err.rstrip("\n").split("\n")))
            else:
                print(f"ok   {example.where}: $ {example.command}")
    print(f"doc_examples: {len(examples) - failures} of {len(examples)} examples as documented")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
