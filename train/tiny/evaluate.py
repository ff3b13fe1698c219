"""Measure qwen-edge-tiny against issue #6's quality bar, through the real runtime.

    python train/tiny/evaluate.py [PKG] [--n 400] [--calibrate] [--ungrounded] [--json]

Every request goes through what the agent does on a device: the package's chat template with
the seven tool schemas and the demo's system prompt, greedy decoding, the tool-call grammar
applied lazily from the model's own ``<tool_call>`` with the tools' grounded arguments quoted
from the user's messages (``--ungrounded`` writes them freely, ``--unconstrained`` turns the
grammar off), and the router's confidence score of the answer. Three sets: held-out
requests generated with other seeds, templates and entities than training
(``corpus.eval_requests``); ``handwritten.jsonl``, written by people (``handwritten``); and
``handwritten_typed.jsonl`` (``handwritten-typed``), written as people type on a phone or a
laptop (typos, fragments, polite long forms, other units). Neither hand-written file is ever
trained on. ``--train-templates`` adds a fourth: requests generated from the training
templates and entities with a seed training did not use, to tell a task not learned from
phrasings not generalized to.

Metrics (each over the items it applies to):
- tool selection: the called function names (as a multiset) equal the expected ones;
- arguments: every expected call matched with ``scoring.match_call``;
- valid calls: every call parses and its arguments satisfy the tool's JSON schema;
- answers: an answer after tool results states the results' key values;
- routing: share of out-of-scope requests whose confidence is below the threshold
  (escalated) and of in-scope requests at or above it (kept local); ROC AUC of the score.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

import corpus
import scoring

from qwen_edge.agents.tools import as_tool, grounding_texts
from qwen_edge.default_model import DEFAULT_SYSTEM
from qwen_edge.demo import home_tools
from qwen_edge.routing import calibrate, confidence_of, roc_auc
from qwen_edge.tool_formats import hermes

TOOLS = [as_tool(t) for t in home_tools.TOOLS]
SCHEMAS = [t.to_openai() for t in TOOLS]
CALL_KINDS = {"single", "parallel", "followup", "tool_error", "clarify"}
ANSWER_KINDS = {"answer", "tool_error_answer"}
# the kinds a hand-written line may have ("answer" when it ends with tool messages)
HANDWRITTEN_KINDS = {"single", "parallel", "followup", "tool_error", "answer", "no_tool",
                     "unsupported", "oos", "clarify"}
HANDWRITTEN = HERE / "handwritten.jsonl"
HANDWRITTEN_TYPED = HERE / "handwritten_typed.jsonl"  # typed as people type (issue #27)


@dataclass
class Response:
    content: str
    calls: list[dict[str, Any]]
    parse_errors: list[str]
    confidence: float


@dataclass
class Item:
    messages: list[dict[str, Any]]
    kind: str
    expected_calls: list[dict[str, Any]]
    key_values: list[str] = field(default_factory=list)
    expected_text: str | None = None
    source: str = "heldout"


def respond(model: Any, messages: Sequence[Mapping[str, Any]], *, constrained: bool = True,
            grounded: bool = True, system: str | None = DEFAULT_SYSTEM, max_tokens: int = 128,
            session: Any = None) -> Response:
    """One assistant step, exactly as ``qwen_edge.Agent`` generates it locally.

    ``grounded=False`` lets the model write the tools' grounded arguments freely instead of
    quoting them from the user's messages (the agent always grounds them).

    Pass a ``session`` to reuse the cached system prompt and tool schemas between requests
    (the tokens generated are the same; only the prefill is shorter).
    """
    msgs = [*([{"role": "system", "content": system}] if system else []), *messages]
    prompt = model.encode_chat(msgs, tools=SCHEMAS)
    options: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0}
    if constrained:
        grounding = grounding_texts(messages) if grounded else None
        options |= hermes.constraint_options(
            TOOLS, "auto", tool_call_token=model.tokenizer.token_to_id("<tool_call>"),
            grounding=grounding)
    text, logprobs, entropies = [], [], []
    for chunk in (session or model.session()).stream_chunks(prompt, **options):
        text.append(chunk.text)
        if chunk.logprob is not None and chunk.entropy is not None:
            logprobs.append(chunk.logprob)
            entropies.append(chunk.entropy)
    content, calls, errors = hermes.parse_tool_calls("".join(text), strict=False)
    return Response(content, [{"name": c.name, "arguments": c.arguments} for c in calls],
                    [e.message for e in errors], confidence_of(logprobs, entropies))


def valid_call(call: Mapping[str, Any]) -> bool:
    for t in TOOLS:
        if t.name == call["name"]:
            try:
                jsonschema.validate(call["arguments"], t.parameters)
            except jsonschema.ValidationError:
                return False
            return True
    return False


def generated_items(n: int, seed: int = 1234, split: str = "heldout") -> list[Item]:
    """Generated items (``corpus.eval_requests``): held-out templates and entities, or with
    ``split="train"`` the training ones."""
    out = []
    for e in corpus.eval_requests(n, seed=seed, split=split):
        kind = e.kind
        if kind == "tool_error" and e.messages[-1]["role"] == "tool":
            kind = "tool_error_answer"
        out.append(Item(e.messages, kind, list(e.expected_calls), list(e.key_values),
                        e.expected_text, source=split))
    return out


def handwritten_items(path: Path = HANDWRITTEN, source: str = "handwritten") -> list[Item]:
    """The items of a hand-written file (``HANDWRITTEN`` or ``HANDWRITTEN_TYPED``).

    Every line is checked first (``check_line``), so that a mistyped tool name or argument
    fails here, naming the line, instead of scoring a correct model as wrong.

    Raises:
        ValueError: a line is not valid JSON or not a valid item.
    """
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            msg = f"{path.name}:{number}: not JSON ({exc.msg}); write one item per line"
            raise ValueError(msg) from None
        problems = check_line(d)
        if problems:
            msg = f"{path.name}:{number}: {'; '.join(problems)}"
            raise ValueError(msg)
        kind = d["kind"]
        if d["messages"][-1]["role"] == "tool":
            kind = "tool_error_answer" if kind == "tool_error" else "answer"
        out.append(Item(d["messages"], kind, d.get("expected_calls", []),
                        d.get("key_values", []), d.get("expected_text"), source))
    return out


def _schema_problem(name: Any, arguments: Any) -> str | None:
    tool = next((t for t in TOOLS if t.name == name), None)
    if tool is None:
        return f"unknown tool {name!r} (the tools are {', '.join(t.name for t in TOOLS)})"
    try:
        jsonschema.validate(arguments, tool.parameters)
    except jsonschema.ValidationError as exc:
        return f"{name} arguments {arguments!r}: {exc.message}"
    return None


def check_line(d: Any) -> list[str]:
    """Problems of one hand-written item (a parsed line); empty when it is valid.

    Valid: a known kind; messages that start with a user turn and end with a user turn or
    with tool messages; every call (expected, or in the history) names a tool and satisfies
    its JSON schema; every tool message holds what the tool really returns for its call, as
    the agent shows it (``corpus.run_tool``); items ending with tool messages have key values
    and no expected calls; call kinds have expected calls, the others none.
    """
    if not isinstance(d, dict) or not isinstance(d.get("messages"), list) or not d["messages"]:
        return ["an item is an object with a non-empty \"messages\" list"]
    problems = []
    kind, messages = d.get("kind"), d["messages"]
    if kind not in HANDWRITTEN_KINDS:
        problems.append(f"unknown kind {kind!r}; use one of {', '.join(sorted(HANDWRITTEN_KINDS))}")
    if messages[0].get("role") != "user" or messages[-1].get("role") not in ("user", "tool"):
        problems.append("messages must start with a user turn and end with a user turn or tool "
                        "messages")
    expected = d.get("expected_calls", [])
    for call in expected:
        name, args = call.get("name"), call.get("arguments")
        problem = _schema_problem(name, args)
        if problem:
            problems.append(f"expected call: {problem}")
        elif (corpus.run_tool(name, args)[2] is None) == (kind == "tool_error"):
            problems.append(f"expected call {name}({args!r}) must "
                            f"{'fail' if kind == 'tool_error' else 'succeed'} in a {kind} item")
    for j, m in enumerate(messages):
        calls = m.get("tool_calls") or []
        for k, c in enumerate(calls):
            function = c.get("function") or {}
            name, args = function.get("name"), function.get("arguments")
            problem = _schema_problem(name, args)
            if problem:
                problems.append(f"message {j}: {problem}")
                continue
            result = messages[j + 1 + k] if j + 1 + k < len(messages) else {}
            content = corpus.run_tool(name, args)[0]
            if result.get("role") != "tool" or result.get("content") != content:
                problems.append(f"message {j + 1 + k} must be the tool message {content!r} "
                                f"(what {name} returns for {args!r})")
    if messages[-1].get("role") == "tool":
        if not d.get("key_values") or expected:
            problems.append("an item that ends with tool messages needs key_values and no "
                            "expected_calls")
    elif kind in CALL_KINDS - {"clarify"} and not expected:
        problems.append(f"a {kind} item needs expected_calls")
    elif kind not in CALL_KINDS and expected:
        problems.append(f"a {kind} item expects no calls")
    return problems


def quoted(item: Item) -> Item:
    """``item`` with the canonical answers of its history quoted (``corpus.quote_answers``)."""
    example = corpus.quote_answers(corpus.Example(item.messages, item.kind, "heldout"))
    return replace(item, messages=example.messages)


@dataclass
class Report:
    n: int = 0
    selection: list[bool] = field(default_factory=list)
    arguments: list[bool] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    answers: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    in_scope: list[bool] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # items per kind

    def summary(self, threshold: float) -> dict[str, Any]:
        def rate(xs: Iterable[bool]) -> float | None:
            xs = list(xs)
            return round(sum(xs) / len(xs), 4) if xs else None

        pairs = list(zip(self.scores, self.in_scope, strict=True))
        failed = Counter(f["kind"] for f in self.failures)
        out = {
            "items": self.n,
            "tool_selection": rate(self.selection), "exact_arguments": rate(self.arguments),
            "valid_calls": rate(self.valid), "answer_states_key_values": rate(self.answers),
            "oos_escalated": rate(s < threshold for s, ok in pairs if not ok),
            "in_scope_local": rate(s >= threshold for s, ok in pairs if ok),
            "threshold": threshold,
            "counts": {"selection": len(self.selection), "answers": len(self.answers),
                       "oos": sum(not ok for _, ok in pairs), "in_scope": sum(self.in_scope)},
            # failed / items of each kind (out-of-scope items count in the routing rates only)
            "failed_by_kind": {k: f"{failed[k]}/{n}" for k, n in sorted(self.kinds.items())
                               if k != "oos"},
        }
        if any(self.in_scope) and not all(self.in_scope):
            out["routing_roc_auc"] = round(roc_auc(self.scores, self.in_scope), 4)
        return out


def evaluate(model: Any, items: Sequence[Item], *, constrained: bool = True,
             grounded: bool = True) -> Report:
    report = Report()
    session = model.session()
    for item in items:
        r = respond(model, item.messages, constrained=constrained, grounded=grounded,
                    session=session)
        report.n += 1
        report.kinds[item.kind] += 1
        calls = r.calls
        report.valid += [valid_call(c) for c in calls]
        if r.parse_errors:
            report.valid.append(False)
        first_turn = item.messages[-1]["role"] == "user"
        if first_turn:  # the router decides on requests, not on answers to tool results
            report.scores.append(r.confidence)
            report.in_scope.append(item.kind != "oos")
        ok = True
        if item.kind in CALL_KINDS and item.expected_calls:
            names_ok = Counter(c["name"] for c in calls) == Counter(
                c["name"] for c in item.expected_calls)
            args_ok = names_ok and len(calls) == len(item.expected_calls) and all(
                any(scoring.match_call(e, g)[1] for g in calls) for e in item.expected_calls)
            report.selection.append(names_ok)
            report.arguments.append(args_ok)
            ok = args_ok
        elif item.kind in ANSWER_KINDS:
            good = not calls and scoring.states_key_values(r.content, item.key_values)
            report.answers.append(good)
            ok = good
        elif item.kind in ("no_tool", "unsupported", "clarify"):
            report.selection.append(not calls)  # the right choice is no call
            ok = not calls
        if not ok:
            report.failures.append({"kind": item.kind, "source": item.source,
                                    "request": item.messages[-1]["content"][:120],
                                    "expected": item.expected_calls or item.key_values,
                                    "got": calls or r.content[:120]})
    return report


def main(argv: list[str] | None = None) -> int:
    import qwen_edge

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("package", nargs="?", help="model package (default: the shipped one)")
    p.add_argument("--n", type=int, default=400, help="held-out generated requests")
    p.add_argument("--threshold", type=float, default=None,
                   help="routing threshold (default: the shipped model's)")
    p.add_argument("--calibrate", action="store_true",
                   help="pick the threshold on the generated held-out set (router.calibrate) "
                        "and use it for both sets")
    p.add_argument("--unconstrained", action="store_true", help="no tool-call grammar at all")
    p.add_argument("--ungrounded", action="store_true",
                   help="the grammar without grounding: grounded arguments written freely")
    p.add_argument("--quote-values", action="store_true",
                   help="earlier answers in the items' history with quoted values, as a model "
                        "trained with train.py --quote-values writes them")
    p.add_argument("--train-templates", action="store_true",
                   help="also score requests generated from the *training* templates and "
                        "entities (another seed): the task as taught, against the held-out "
                        "set's new phrasings")
    p.add_argument("--json", action="store_true")
    p.add_argument("--failures", type=int, default=15, help="print this many failures")
    args = p.parse_args(argv)
    from qwen_edge.default_model import ROUTING_THRESHOLD

    model = qwen_edge.load(args.package) if args.package else qwen_edge.load_default()
    threshold = ROUTING_THRESHOLD if args.threshold is None else args.threshold
    results = {}
    sets = [("heldout", generated_items(args.n)), ("handwritten", handwritten_items()),
            ("handwritten-typed", handwritten_items(HANDWRITTEN_TYPED, "handwritten-typed"))]
    if args.train_templates:
        sets.append(("train-templates", generated_items(args.n, seed=777, split="train")))
    for name, given in sets:
        items = [quoted(item) for item in given] if args.quote_values else given
        report = evaluate(model, items, constrained=not args.unconstrained,
                          grounded=not args.ungrounded)
        if args.calibrate and name == "heldout":
            threshold = calibrate(report.scores, report.in_scope)
            print(f"calibrated threshold: {threshold:.4f}")
        results[name] = report.summary(threshold)
        if not args.json:
            print(f"== {name}: {json.dumps(results[name])}")
            for f in report.failures[: args.failures]:
                print("  ", json.dumps(f, ensure_ascii=False)[:300])
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
