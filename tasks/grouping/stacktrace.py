"""Stack traces: the exception type (and its root cause), its message, and the application's own top frames.

Two traces with the same root cause thrown from the same application code are one problem even when their
framework frames or messages' variable parts differ; the same exception from different code is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

JAVA_EXC = re.compile(r"^(?:Caused by:\s*|Exception in thread \"[^\"]*\"\s*)?([A-Za-z_$][\w$]*(?:\.[\w$]+)+"
                      r"(?:Exception|Error|Throwable|Failure|Fault)[\w$]*)(?::\s?(.*))?$")
JAVA_FRAME = re.compile(r"^\s*at ([\w$.<>/]+)\(")
PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
PY_EXC = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|Timeout)\w*)(?::\s?(.*))?$")
FRAMEWORK = ("java.", "javax.", "jakarta.", "jdk.", "sun.", "com.sun.", "org.springframework.", "org.apache.",
             "io.netty.", "reactor.", "kotlin.", "kotlinx.", "scala.", "org.hibernate.", "com.zaxxer.", "okhttp3.",
             "feign.", "io.micrometer.", "org.eclipse.", "net.bytebuddy.", "ch.qos.", "org.slf4j.", "com.fasterxml.",
             "io.grpc.", "org.postgresql.", "oracle.", "com.mysql.", "io.undertow.", "org.glassfish.", "org.jboss.",
             "io.opentelemetry.", "brave.", "rx.", "io.reactivex.", "org.junit.", "com.google.")
APP_FRAMES = 2
MAX_TRACE = 200_000  # characters of a stack trace that are parsed
MAX_LINE = 1000  # characters of one trace line that are parsed


@dataclass
class Trace:
    exc_type: str
    root_type: str
    message: str
    app_frames: list[str] = field(default_factory=list)

    def key_message(self, first_line: str, *, frames: bool = True) -> str:
        """What the miner sees: root cause type, the message of the first line, the app's own frames.
        Without frames: the exception type and message only, the key the same error has when logged
        without a stack trace (see docs/GROUPING.md, "One error, one problem")."""
        message = self.message or first_line
        simple = self.exc_type.rsplit(".", 1)[-1]
        if message.startswith(self.exc_type):
            message = message[len(self.exc_type):].lstrip(": ")
        elif simple != self.exc_type and message.startswith(simple + ":"):
            message = message[len(simple):].lstrip(": ")
        if not frames:
            return f"{self.exc_type}: {message}".strip()
        at = " ".join(f"at:{f}" for f in self.app_frames)
        root = f" root:{self.root_type}" if self.root_type != self.exc_type else ""
        return f"{self.exc_type}:{root} {message} {at}".strip()


# where str.splitlines ends a line: the first line of a trace is cut off at the first of these (\r\n is one end)
_LINE_END = re.compile("\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_EXC_PREFIX = re.compile(r"Caused by:\s*|Exception in thread \"[^\"]*\"\s*")
_EXC_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[\w$]+)+(?:Exception|Error|Throwable|Failure|Fault)[\w$]*")


def parse_trace(message: str, stack_trace: str | None, error_type: str | None) -> Trace | None:
    """A Trace when the event carries a stack trace (in stack_trace, or a multi-line message), else None."""
    text = stack_trace if stack_trace else (message if "\n" in message else None)
    if not text:
        if error_type:
            return Trace(exc_type=error_type, root_type=error_type, message="")
        return None
    # bounded work whatever the input: the head of the trace, each line cut to a sane length
    text = text[:MAX_TRACE]
    if 'File "' in text:  # a substring test skips Java's
        lines = [line[:MAX_LINE] for line in text.splitlines()]
        if any(PY_FRAME.match(line) for line in lines[:50]):
            return _python(lines, error_type)
        return _java(lines, message, error_type)
    head, body = _split_first_line(text)
    return _java_head(head[:MAX_LINE].strip(), body, text, message, error_type)


def _split_first_line(text: str) -> tuple[str, str]:
    """The first line (ended as str.splitlines ends one) and the rest. Usually it ends at the first "\n": when
    the text before that is printable, it holds no other line end (each is a control or separator character),
    found with two C calls instead of the expression's scan (1.0 → 0.2 µs a trace)."""
    cut = text.find("\n")
    head = text if cut < 0 else text[:cut]
    if head.isprintable():
        return head, "" if cut < 0 else text[cut + 1:]
    end = _LINE_END.search(text)
    return (text[:end.start()], text[end.end():]) if end else (text, "")


def _java(lines: list[str], message: str, error_type: str | None) -> Trace | None:
    """`_java_head` for a trace already split into lines."""
    return _java_head(lines[0].strip() if lines else "", "\n".join(lines[1:400]), lines, message, error_type)


def _java_head(head: str, body: str, lines: list[str] | str, message: str, error_type: str | None) -> Trace | None:
    """The usual trace starts with its exception line; its frames repeat from event to event (only the first
    line carries the message's variables), so what the frames (``body``: the lines after the first) say is
    read once per distinct body. ``lines``: the trace's lines, or its text to split when the head is not an
    exception line."""
    exception = _exception_line(head)
    if exception is None or head.startswith("at "):
        if isinstance(lines, str):
            lines = [line[:MAX_LINE] for line in lines.splitlines()]
        return _java_scan(lines, message, error_type)
    name, rest = exception
    exc_type = error_type or name
    exc_message = "" if error_type else (rest or "").strip()
    _, root, frames = _java_body(body, 1 if head.startswith("Caused by:") else 0)
    return _java_trace(exc_type, root or name, exc_message, list(frames), message)


def _exception_line(head: str) -> tuple[str, str | None] | None:
    """``JAVA_EXC.match(head)``'s two groups, without its backtracking over the message: the exception's name
    runs from the optional "Caused by:" to the first ":" (a name holds none), checked once per distinct name."""
    prefix = _EXC_PREFIX.match(head) if head[:1] in "CE" else None
    start = prefix.end() if prefix else 0
    colon = head.find(":", start)
    name = head[start:] if colon < 0 else head[start:colon]
    if not _is_exception_name(name):
        return None
    if colon < 0:
        return name, None
    rest = head[colon + 1:]
    return name, rest[1:] if rest[:1].isspace() else rest


@lru_cache(maxsize=20_000)
def _is_exception_name(name: str) -> bool:
    return _EXC_NAME.fullmatch(name) is not None


@lru_cache(maxsize=20_000)
def _java_body(body: str, block: int) -> tuple[tuple[str, str] | None, str | None, tuple[str, ...]]:
    """`_read_java_lines` of a trace's lines after its first, by their text (cached: bodies repeat)."""
    return _read_java_lines(tuple(line[:MAX_LINE] for line in body.splitlines()[:399]), block)


def _java_scan(lines: list[str], message: str, error_type: str | None) -> Trace | None:
    """Any Java-like trace, line by line."""
    first, root, frames = _read_java_lines(tuple(lines[:400]))
    exc_type = error_type or (first[0] if first else None)
    if exc_type is None:
        return None
    exc_message = first[1] if first and not error_type else ""
    return _java_trace(exc_type, root or error_type, exc_message, list(frames), message)


def _read_java_lines(lines: tuple[str, ...], block: int = 0) -> tuple[tuple[str, str] | None, str | None,
                                                                         tuple[str, ...]]:
    """The first exception line (type, message), the last exception type (the root cause) and the app's own
    frames: of the outermost exception, else of a cause."""
    first: tuple[str, str] | None = None
    root: str | None = None
    frames: list[str] = []
    for line in lines:
        stripped = line.strip()
        m = JAVA_EXC.match(stripped)
        if m and not stripped.startswith("at "):
            if first is None:
                first = (m.group(1), (m.group(2) or "").strip())
            root = m.group(1)
            if stripped.startswith("Caused by:"):
                block += 1
            continue
        f = JAVA_FRAME.match(line)
        if f and len(frames) < APP_FRAMES and (block == 0 or not frames):
            name = f.group(1)
            if not name.startswith(FRAMEWORK) and "$$" not in name:
                frames.append(_strip_lambda(name))
    return first, root, tuple(frames)


def _java_trace(exc_type: str, root_type: str | None, exc_message: str, frames: list[str], message: str) -> Trace:
    if not exc_message:
        first = message.splitlines()[0].strip() if message else ""
        exc_message = first[:MAX_LINE] if not first.startswith(exc_type) else first[len(exc_type):MAX_LINE].lstrip(": ")
    return Trace(exc_type=exc_type, root_type=root_type or exc_type, message=exc_message, app_frames=frames)


def _python(lines: list[str], error_type: str | None) -> Trace | None:
    frames: list[str] = []
    exc_type, exc_message = error_type, ""
    for line in lines:
        f = PY_FRAME.match(line)
        if f:
            path, func = f.groups()
            if "site-packages" not in path and "/lib/python" not in path:
                module = path.rsplit("/", 1)[-1].removesuffix(".py")
                frames.append(f"{module}.{func}")
            continue
        m = PY_EXC.match(line.strip())
        if m and not line.startswith(" "):
            exc_type, exc_message = m.group(1), (m.group(2) or "").strip()
    if exc_type is None:
        return None
    # Python prints the innermost frame last: the app's frames closest to the error matter most
    return Trace(exc_type=exc_type, root_type=exc_type, message=exc_message, app_frames=frames[::-1][:APP_FRAMES])


def _strip_lambda(name: str) -> str:
    return re.sub(r"\$\d+|lambda\$\w+\$\d+", "", name)
