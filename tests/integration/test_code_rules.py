"""Rules about the C code that a reader cannot see from one file: checked by
reading the sources, so they need no services.

Error classes are decided at the source (issue 16): the layer that sees a
failure returns its class (pg.h: a missing migration is an outage; rpc.h: an
endpoint's error answer is transient; ipfs.h: a provider down is an outage)
and every caller passes it on as it is. A caller that rewrites a class it got
back (`c == ZL_PERMANENT ? ZL_TRANSIENT : c`), wraps the rewrite in a helper
(`pg_class(c)`), or searches a failure's message for text ("insufficient
funds") to pick another class makes the same failure pause one path and
dead-letter on another. These tests fail on any such place under common/,
workers/ or tools/, naming file and line.
"""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("common", "workers", "tools")

CLASS = r"ZL_(?:OK|TRANSIENT|DEFER|PERMANENT|POISON|OUTAGE)\b"

# `c == ZL_PERMANENT ? ZL_OUTAGE : c`, also `c == ZL_DEFER || c == ZL_PERMANENT ? ...`
TERNARY = re.compile(r"[!=]=\s*" + CLASS + r"[^;?(){}]*?\?\s*" + CLASS)
# `if (c == ZL_PERMANENT) c = ZL_TRANSIENT;` (braces optional)
ASSIGN = re.compile(r"if\s*\(\s*([\w.>-]+)\s*[!=]=\s*" + CLASS + r"\s*\)\s*\{?\s*\1\s*=\s*" + CLASS)
# strstr(err, "insufficient funds"): the first argument names a failure's text
TEXT_SEARCH = re.compile(r"\b(?:strstr|strcasestr|contains_ci)\s*\(\s*([^,()]*(?:\([^()]*\))?[^,()]*),")
FAILURE_TEXT = re.compile(r"err|why|msg|message|reason", re.IGNORECASE)
# a function that returns a class and takes one: a candidate wrapper
CLASS_FN = re.compile(r"^(?:static\s+)?(?:inline\s+)?zl_class\s+(\w+)\s*\(([^)]*)\)\s*\n?\{", re.MULTILINE)


def strip_comments(src: str) -> str:
    """Comments (and string contents are kept) replaced by spaces of the same
    shape, so line numbers still match."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", lambda m: re.sub(r"[^\n]", " ", m.group(0)), src, flags=re.DOTALL)


def line_of(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def body_at(src: str, open_brace: int) -> str:
    depth = 0
    for i in range(open_brace, len(src)):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                return src[open_brace:i + 1]
    return src[open_brace:]


def class_rewrites(src: str) -> list[tuple[int, str]]:
    """(line, what) for every place in one C source that maps a class it got
    back to another."""
    code = strip_comments(src)
    found = []
    for m in TERNARY.finditer(code):
        found.append((line_of(code, m.start()), "class rewritten by a ternary: " + m.group(0)))
    for m in ASSIGN.finditer(code):
        found.append((line_of(code, m.start()), "class rewritten by an assignment: " + m.group(0)))
    for m in TEXT_SEARCH.finditer(code):
        if FAILURE_TEXT.search(m.group(1)):
            found.append((line_of(code, m.start()), "a failure's message searched for text: " + m.group(0)))
    for m in CLASS_FN.finditer(code):
        params = [p.split()[-1].lstrip("*") for p in m.group(2).split(",") if re.match(r"\s*zl_class\s", p)]
        body = body_at(code, m.end() - 1)
        for p in params:
            decides = re.search(r"\b" + p + r"\s*[!=]=\s*" + CLASS, body) or re.search(r"switch\s*\(\s*" + p + r"\s*\)",
                                                                                      body)
            if decides and re.search(r"return\s+[^;]*" + CLASS, body):
                found.append((line_of(code, m.start()), f"{m.group(1)}() maps its class argument {p} to another"))
    return sorted(set(found))


# The one place where a node's raw error text is read, into a broadcast
# reason (sent, refused, unfunded, retry) and a revert match: that is the
# source where the meaning is decided, so it may search the text. Everything
# else receives the reason.
SOURCES_OF_MEANING = {
    ("common/txmgr.c", "zl_tx_classify_answer"),
    ("common/txmgr.c", "zl_tx_revert_is"),
}
FUNCTION_START = re.compile(r"^(?:static\s+)?[a-z_][\w\s*]*?\b(\w+)\s*\([^;{]*\)\s*\n?\{", re.MULTILINE)


def enclosing_function(src: str, line: int) -> str:
    """Name of the function whose definition starts last before line."""
    name = ""
    for m in FUNCTION_START.finditer(strip_comments(src)):
        if line_of(src, m.start()) > line:
            break
        name = m.group(1)
    return name


def sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO / d).rglob("*.c"))


def test_the_check_sees_each_kind_of_rewrite_and_lets_a_pass_through_be():
    """Guards against the rule below passing because its patterns stopped
    matching: each kind of rewrite is found, a pass-through is not."""
    flagged = {
        "ternary": "zl_class f(void) { zl_class c = g(); return c == ZL_PERMANENT ? ZL_OUTAGE : c; }",
        "two-condition ternary": "x = c == ZL_DEFER || c == ZL_PERMANENT\n    ? ZL_TRANSIENT : c;",
        "assignment": "if (c == ZL_PERMANENT)\n    c = ZL_TRANSIENT;",
        "wrapper": "static zl_class pg_class(zl_class c)\n{\n    return c == ZL_PERMANENT ? ZL_TRANSIENT : c;\n}",
        "switch wrapper": "static zl_class rpc_cls(zl_class c)\n{\n    switch (c) {\n    case ZL_PERMANENT: return "
                          "ZL_TRANSIENT;\n    default: return c;\n    }\n}",
        "message search": 'if (bc == ZL_OUTAGE && contains_ci(err, "insufficient funds")) x = 1;',
        "strstr on a work's error": 'bool none = strstr(w->error, "finds none") != NULL;',
        "strcasestr on an rpc error": 'if (strcasestr(re.message, "nonce too low")) return ZL_OK;',
    }
    for name, snippet in flagged.items():
        assert class_rewrites(snippet), f"the check misses a {name}: {snippet!r}"
    passed = {
        "pass-through": "static zl_class tx_fail(struct d *d, zl_class c)\n{\n    rollback(d);\n    return c;\n}",
        "a decision from data": "if (status != 1) { w->result = ZL_PERMANENT; }",
        "a log level from a class": "zl_log_kv(c == ZL_OUTAGE ? ZL_LOG_WARN : ZL_LOG_INFO, NULL, \"x\", NULL);",
        "a URL search": 'const char *at = strstr(tmpl, "{token}");',
        "a comment": "/* c == ZL_PERMANENT ? ZL_TRANSIENT : c was the old way */",
    }
    for name, snippet in passed.items():
        assert class_rewrites(snippet) == [], f"the check flags a {name}: {snippet!r}"
    src = "static int a(void)\n{\n    return 1;\n}\n\nzl_tx_reason zl_tx_classify_answer(const struct e *re)\n{\n    x;\n}\n"
    assert enclosing_function(src, 8) == "zl_tx_classify_answer" and enclosing_function(src, 3) == "a"


def test_no_code_rewrites_an_error_class_a_callee_returned():
    """Guards against the same failure being classed differently on two
    paths (a missing migration pausing one path and walking the retry tiers
    into the DLQ on another): no .c file under common/, workers/ or tools/
    maps a class it got back to another, in a ternary, an assignment, a
    wrapper like pg_class(), or by searching the failure's message."""
    found = []
    for path in sources():
        src = path.read_text(errors="replace")
        rel = str(path.relative_to(REPO))
        for line, what in class_rewrites(src):
            if (rel, enclosing_function(src, line)) in SOURCES_OF_MEANING:
                continue
            found.append(f"{rel}:{line}: {what}")
    assert found == [], ("each layer returns the class it knows and callers pass it on (issue 16); these places "
                         "rewrite one:\n" + "\n".join(found))


def test_each_source_of_meaning_still_exists():
    """Guards against the exception list outliving the code it excuses: each
    (file, function) named there is still defined."""
    for rel, fn in SOURCES_OF_MEANING:
        src = (REPO / rel).read_text()
        assert re.search(r"^\w[^\n;]*\b" + fn + r"\s*\(", src, re.MULTILINE), f"{rel} no longer defines {fn}()"


FILE_LINES_MAX = 1000       # one screen of concern, split at a seam past it (issue 16)
STAGE_MAIN_LINES_MAX = 400  # a stage's main.c is its settings and stage table


def test_no_source_file_grows_past_one_concern():
    """Guards against the 1,400-line stage and the 1,700-line runtime coming
    back: no .c or .h under common/ or workers/ over FILE_LINES_MAX lines,
    and every workers/<stage>/main.c under STAGE_MAIN_LINES_MAX."""
    too_long = []
    for d in ("common", "workers"):
        for path in sorted((REPO / d).rglob("*.[ch]")):
            n = path.read_text(errors="replace").count("\n")
            limit = STAGE_MAIN_LINES_MAX - 1 if path.name == "main.c" and d == "workers" else FILE_LINES_MAX
            if n > limit:
                too_long.append(f"{path.relative_to(REPO)}: {n} lines, limit {limit}")
    assert too_long == [], "split these at a seam:\n" + "\n".join(too_long)


def test_every_producer_is_made_by_the_one_constructor_that_keeps_acks_all():
    """Guards against a producer made with rd_kafka_new directly (a new tool,
    a stage's second producer) escaping zl_kafka_producer_new, which sets
    acks=all and the idempotent producer and refuses pass-through properties
    that weaken them (issue 23; tests/unit/test_kafka_producer.c)."""
    made_here = []
    for path in sources():
        if path.relative_to(REPO).as_posix() == "common/kafka.c":
            continue
        src = strip_comments(path.read_text())
        for m in re.finditer(r"\brd_kafka_new\s*\(\s*RD_KAFKA_PRODUCER", src):
            made_here.append(f"{path.relative_to(REPO)}:{line_of(src, m.start())}")
    assert made_here == [], "make producers with zl_kafka_producer_new:\n" + "\n".join(made_here)
    kafka_c = strip_comments((REPO / "common" / "kafka.c").read_text())
    assert len(re.findall(r"\brd_kafka_new\s*\(\s*RD_KAFKA_PRODUCER", kafka_c)) == 1
    assert "zl_kafka_producer_guarantees(conf" in kafka_c, "the constructor no longer checks what it made"
