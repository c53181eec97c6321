"""The pathway agent: a scripted conversation graph, so a reminder can take replies without a language model.

A pathway is a set of nodes. The conversation sits at one node; the person's answer is read by the node's
extractors and sent down the first of its edges whose condition holds, and the node it reaches says its
line. A whole pathway is validated when it is loaded, so a typo in a node id fails provisioning instead of
a conversation::

    id: appointment-reminder
    version: 1
    start: reminded                        # where the greeting leaves the conversation
    nodes:
      reminded:
        extract: {appointment_time: time}  # read from the greeting, then from each answer
        reask: Sorry, I didn't catch that. Reply YES to keep your appointment or send a new time.
        edges:                             # tried in order; each edge's conditions must all hold
          - {to: moved, has: appointment_time}                 # extracted from this answer
          - {to: kept, answer: yes}                            # the answer is a yes (or `no`)
          - {to: kept, keywords: [see you, "i'll be there"]}   # whole words, any case
          - {to: moved, examples: ["can we change the time"]}  # see EXAMPLE_THRESHOLD
          - {to: moved, regex: '\\bresched'}                   # searched for, ignoring case
          - {to: staff, otherwise: true}                       # last, and required
      moved: {say: "Done, see you at {appointment_time}.", set: {outcome: moved}, end: completed}
      kept: {say: "Thanks, see you then!", end: completed}
      staff: {say: A member of our team will get back to you., end: handoff}

An answer only the `otherwise` edge takes is unclear: a node with `reask` answers the first `max_reasks`
(default 1) of them with that line and stays put, and only then follows `otherwise`. Extractors are `time`,
`day`, `yes_no` and `number` (see `extract`); what a node extracts from an answer is merged into the
conversation's variables, and `set` adds fixed ones when a node is reached. `{name}` in `say` and `reask` is
a variable some node extracts or sets, or `{metadata.KEY}` from the conversation's metadata; one with no
value renders empty and the spacing around it is tidied. `{{` and `}}` are literal braces. The start node's
`say` is said only if an edge leads back to it: the greeting, sent by the caller, opens the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from reachout.agents.base import AgentEnd, AgentTurn, ConversationView, EndReason, Speaker
from reachout.agents.extract import ExtractorKind, Value, extract, extract_yes_no, normalise

EXAMPLE_THRESHOLD: Final = 0.75
"""An `examples` edge holds when this share of some example's words appears in the answer."""
WORD_SIMILARITY: Final = 0.8
"""Words of four letters or more, negations aside, also match an answer's word this alike (difflib ratio)."""

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_VARIABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
NodeId = Annotated[str, StringConstraints(pattern=_ID)]
VariableName = Annotated[str, StringConstraints(pattern=_VARIABLE)]
Location = tuple[str | int, ...]


# --- templates -------------------------------------------------------------------------------------------

_METADATA = "metadata."
_TEMPLATE_PART: Final = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER: Final = re.compile(rf"{_VARIABLE[1:-1]}|{re.escape(_METADATA)}[^{{}}\s]+")


def placeholders(template: str) -> list[str]:
    """The placeholders of a template, in order; ValueError if a brace is unmatched or a name malformed."""
    names = []
    for part in _TEMPLATE_PART.finditer(template):
        if part[0] in ("{{", "}}"):
            continue
        name = part[1]
        if name is None:
            raise ValueError(f"unmatched '{part[0]}' (write '{part[0] * 2}' for a literal brace)")
        if _PLACEHOLDER.fullmatch(name) is None:
            raise ValueError(f"'{{{name}}}' is not a placeholder: use {{variable}} or {{metadata.KEY}}")
        names.append(name)
    return names


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render(template: str, variables: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """Fill a template's placeholders; one without a value renders empty and the spacing is tidied."""
    missing = False

    def fill(part: re.Match[str]) -> str:
        nonlocal missing
        if part[1] is None:
            return part[0][0]  # "{{" or "}}"
        name = part[1]
        if name.startswith(_METADATA):
            shown = _shown(metadata.get(name.removeprefix(_METADATA)))
        else:
            shown = _shown(variables.get(name))
        missing = missing or not shown
        return shown

    text = _TEMPLATE_PART.sub(fill, template)
    if missing:
        text = re.sub(r"[ \t]+([,.!?;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    return text


# --- matching --------------------------------------------------------------------------------------------

# Left out when comparing an answer with examples; negations ("not", "cant") are kept on purpose.
_COMMON_WORDS: Final = frozenset(
    (
        "a", "an", "the", "i", "id", "im", "ive", "ill", "me", "my", "mine", "we", "us", "our", "you", "your",
        "it", "its", "this", "that", "these", "those", "to", "of", "for", "on", "in", "at", "by", "is", "are",
        "be", "been", "was", "were", "am", "do", "does", "did", "can", "could", "would", "will", "shall",
        "should", "may", "might", "please", "pls", "just", "so", "and", "or", "but", "with", "about", "have",
        "has", "had", "hi", "hey", "hello", "there", "here",
    )
)  # fmt: skip
_WORD: Final = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def content_words(text: str) -> tuple[str, ...]:
    """The words of a text that carry its meaning: lower-case, without apostrophes or common words."""
    words = (w.replace("'", "") for w in _WORD.findall(normalise(text)))
    return tuple(w for w in ("cant" if w == "cannot" else w for w in words) if w not in _COMMON_WORDS)


# Negations only ever match exactly: "doesnt" is one letter pair from "does", and means the opposite.
_NEGATIONS: Final = frozenset(
    (
        "no", "not", "never", "nothing", "none", "nobody", "neither", "nor", "aint", "cant", "dont", "doesnt",
        "didnt", "wont", "wouldnt", "couldnt", "shouldnt", "isnt", "arent", "wasnt", "werent", "havent",
        "hasnt", "hadnt",
    )
)  # fmt: skip


def _appears(word: str, answer: Sequence[str]) -> bool:
    if word in answer:
        return True
    if len(word) < 4 or word in _NEGATIONS:  # short words are too alike to compare loosely ("can", "cat")
        return False
    return any(
        SequenceMatcher(None, word, other).ratio() >= WORD_SIMILARITY
        for other in answer
        if other not in _NEGATIONS
    )


def similarity(example: Sequence[str], answer: Sequence[str]) -> float:
    """The share of an example's content words that appear in an answer's, allowing for typos."""
    if not example:
        return 0.0
    return sum(_appears(word, answer) for word in example) / len(example)


def _whole_words(phrases: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(normalise(p).strip()).replace(r"\ ", r"\s+") for p in phrases)
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?![\w'])")


# --- the schema ------------------------------------------------------------------------------------------


class Answer(StrEnum):
    """What an `answer` edge waits for."""

    YES = "yes"
    NO = "no"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _problems(title: str, problems: list[tuple[Location, str, object]]) -> None:
    """Raise every problem at once, each at its own location, which Pydantic prefixes with the model's."""
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(type=PydanticCustomError("value_error", message), loc=location, input=value)
                for location, message, value in problems
            ],
        )


class EdgeSpec(_Strict):
    """Where an answer goes: to `to`, if all the edge's conditions hold (`otherwise` stands alone)."""

    to: NodeId
    keywords: tuple[Annotated[str, StringConstraints(min_length=1)], ...] | None = Field(None, min_length=1)
    regex: str | None = None
    examples: tuple[str, ...] | None = Field(None, min_length=1)
    has: VariableName | None = None
    answer: Answer | None = None
    otherwise: bool = False

    @field_validator("answer", mode="before")
    @classmethod
    def _yaml_yes_no(cls, answer: object) -> object:
        # YAML 1.1 (PyYAML) reads an unquoted `answer: yes` as true.
        if isinstance(answer, bool):
            return Answer.YES if answer else Answer.NO
        return answer

    @field_validator("keywords")
    @classmethod
    def _keywords_have_words(cls, keywords: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for keyword in keywords or ():
            if not re.search(r"\w", keyword):
                raise ValueError(f"keyword {keyword!r} has no letters or digits")
        return keywords

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a valid regular expression: {error}") from None
        return pattern

    @field_validator("examples")
    @classmethod
    def _examples_have_words(cls, examples: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for example in examples or ():
            if not content_words(example):
                raise ValueError(f"example {example!r} has no words left once common words are set aside")
        return examples

    @property
    def conditions(self) -> list[str]:
        """The names of the conditions this edge sets, `otherwise` included."""
        names = ("keywords", "regex", "examples", "has", "answer", "otherwise")
        return [name for name in names if getattr(self, name) not in (None, False)]

    @model_validator(mode="after")
    def _one_kind_of_edge(self) -> EdgeSpec:
        if not self.conditions:
            raise ValueError("an edge needs a condition: keywords, regex, examples, has, answer or otherwise")
        if self.otherwise and len(self.conditions) > 1:
            raise ValueError("an `otherwise` edge takes every answer, so it cannot have other conditions")
        return self


class NodeSpec(_Strict):
    """A point in the conversation: what is said on arrival, what answers are read for, where they lead."""

    say: str | None = None
    extract: dict[VariableName, ExtractorKind] = Field(default_factory=dict)
    set_: dict[VariableName, Value] = Field(default_factory=dict, alias="set")
    edges: tuple[EdgeSpec, ...] = ()
    reask: str | None = None
    max_reasks: PositiveInt | None = None
    end: Literal["completed", "handoff"] | None = None  # an agent's reasons (`AgentEnd`), as written

    @field_validator("say", "reask")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        if template is not None:
            placeholders(template)
        return template

    @model_validator(mode="after")
    def _well_formed(self) -> NodeSpec:
        problems: list[tuple[Location, str, object]] = []
        if self.end is not None:
            for name in ("edges", "reask", "extract"):
                if getattr(self, name):
                    problems.append(((name,), f"an end node takes no answers, so it has no {name}", None))
        elif not self.edges:
            problems.append((("edges",), "a node without edges must be an end node (end: completed)", None))
        elif not self.edges[-1].otherwise:
            where = ("edges", len(self.edges) - 1)
            problems.append(
                (where, "the last edge must be `otherwise: true`, so every answer leads on", None)
            )
        for i, edge in enumerate(self.edges[:-1]):
            if edge.otherwise:
                problems.append((("edges", i), "edges after an `otherwise` edge are never tried", None))
        for i, edge in enumerate(self.edges):
            if edge.has is not None and edge.has not in self.extract:
                message = f"'{edge.has}' is not extracted by this node, so this answer never has it"
                problems.append((("edges", i, "has"), message, edge.has))
        if self.max_reasks is not None and self.reask is None:
            problems.append((("max_reasks",), "max_reasks needs a `reask` line to say", self.max_reasks))
        _problems("NodeSpec", problems)
        return self

    @property
    def reasks(self) -> int:
        """How many unclear answers are met with `reask` before the `otherwise` edge is followed."""
        return 0 if self.reask is None else (self.max_reasks or 1)


class PathwaySpec(_Strict):
    """A whole pathway, checked as a graph: every node named exists and every placeholder can be filled."""

    id: NodeId
    version: PositiveInt
    start: NodeId
    nodes: dict[NodeId, NodeSpec] = Field(min_length=1)

    @property
    def variables(self) -> frozenset[str]:
        """Every variable some node extracts or sets."""
        return frozenset(name for node in self.nodes.values() for name in (*node.extract, *node.set_))

    @model_validator(mode="after")
    def _connected(self) -> PathwaySpec:
        problems: list[tuple[Location, str, object]] = []
        if self.start not in self.nodes:
            problems.append((("start",), f"no node is called '{self.start}'", self.start))
        elif self.nodes[self.start].end is not None:
            problems.append((("start",), "the start node cannot be an end node: it takes the answer", None))
        known = self.variables
        for node_id, node in self.nodes.items():
            for i, edge in enumerate(node.edges):
                if edge.to not in self.nodes:
                    location = ("nodes", node_id, "edges", i, "to")
                    problems.append((location, f"no node is called '{edge.to}'", edge.to))
            for field in ("say", "reask"):
                template = getattr(node, field)
                for name in placeholders(template or ""):
                    if not name.startswith(_METADATA) and name not in known:
                        message = (
                            f"'{{{name}}}' is not a variable a node extracts or sets, nor {{metadata.KEY}}"
                        )
                        problems.append((("nodes", node_id, field), message, template))
        _problems("PathwaySpec", problems)
        return self


# --- the agent -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    """An edge with its conditions compiled once, when the agent is made."""

    spec: EdgeSpec
    keywords: re.Pattern[str] | None
    regex: re.Pattern[str] | None
    examples: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, spec: EdgeSpec) -> _Edge:
        return cls(
            spec=spec,
            keywords=_whole_words(spec.keywords) if spec.keywords else None,
            regex=re.compile(spec.regex, re.IGNORECASE) if spec.regex is not None else None,
            examples=tuple(content_words(example) for example in spec.examples or ()),
        )

    def holds(self, text: str, heard: Mapping[str, Value]) -> bool:
        """Whether the answer `text`, from which `heard` was extracted, satisfies every condition."""
        spec = self.spec
        if self.keywords is not None and self.keywords.search(normalise(text)) is None:
            return False
        if self.regex is not None and self.regex.search(text) is None:
            return False
        if self.examples:
            answer = content_words(text)
            if max(similarity(example, answer) for example in self.examples) < EXAMPLE_THRESHOLD:
                return False
        if spec.has is not None and spec.has not in heard:
            return False
        return spec.answer is None or extract_yes_no(text) is (spec.answer is Answer.YES)


@dataclass(frozen=True)
class _Position:
    """Where a conversation stands: its node, and how many unclear answers that node has re-asked."""

    node: str
    reasks: int = 0


class PathwayAgent:
    """Carries a conversation along a pathway. It keeps nothing between calls: all it needs is in `state`."""

    def __init__(self, spec: PathwaySpec) -> None:
        self.spec = spec
        self._edges = {node_id: tuple(map(_Edge.of, node.edges)) for node_id, node in spec.nodes.items()}

    async def start(self, conversation: ConversationView) -> AgentTurn:
        """Read the greeting with the start node's extractors; say nothing and wait at the start node."""
        agent_lines = [line.text for line in conversation.history if line.speaker is Speaker.AGENT]
        greeting = agent_lines[-1] if agent_lines else ""
        heard = self._extract(self.spec.start, greeting)
        return AgentTurn(reply=None, variables=heard, state=self._state(_Position(self.spec.start)))

    async def respond(self, conversation: ConversationView, text: str) -> AgentTurn:
        """Follow the first edge the answer satisfies and say the line of the node it reaches."""
        if not conversation.state:  # start was never recorded: begin as it would have
            opening = await self.start(conversation)
            variables = {**conversation.variables, **opening.variables}
            turn = await self.respond(replace(conversation, variables=variables, state=opening.state), text)
            return replace(turn, variables={**opening.variables, **turn.variables})
        position = self._position(conversation.state)
        if position is None:  # another pathway's, or a node this version no longer has: a person takes over
            return AgentTurn(reply=None, state=dict(conversation.state), end=EndReason.HANDOFF)
        node = self.spec.nodes[position.node]
        if node.end is not None:  # already ended; nothing more to say
            return AgentTurn(reply=None, state=self._state(position), end=_end(node.end))
        heard = self._extract(position.node, text)
        known = {**conversation.variables, **heard}
        edge = next(edge.spec for edge in self._edges[position.node] if edge.holds(text, heard))
        if edge.otherwise and node.reask is not None and position.reasks < node.reasks:
            again = replace(position, reasks=position.reasks + 1)
            return AgentTurn(render(node.reask, known, conversation.metadata), heard, self._state(again))
        target = self.spec.nodes[edge.to]
        learned = {**heard, **target.set_}
        reply = render(target.say, {**known, **learned}, conversation.metadata) if target.say else None
        return AgentTurn(reply, learned, self._state(_Position(edge.to)), end=_end(target.end))

    def _extract(self, node_id: str, text: str) -> dict[str, Value]:
        found = {name: extract(kind, text) for name, kind in self.spec.nodes[node_id].extract.items()}
        return {name: value for name, value in found.items() if value is not None}

    def _state(self, position: _Position) -> dict[str, Any]:
        state: dict[str, Any] = {"pathway": self.spec.id, "version": self.spec.version, "node": position.node}
        if position.reasks:
            state["reasks"] = position.reasks
        return state

    def _position(self, state: Mapping[str, Any]) -> _Position | None:
        """The position `state` records, or None if it is no node of this pathway.

        A conversation begun on an earlier version carries on if its node still exists: node ids are what
        versions keep, so that editing a line does not strand every conversation under way.
        """
        node, reasks = state.get("node"), state.get("reasks", 0)
        if state.get("pathway") != self.spec.id:
            return None
        if not isinstance(node, str) or node not in self.spec.nodes:
            return None
        if not isinstance(reasks, int) or isinstance(reasks, bool) or reasks < 0:
            return None
        return _Position(node, reasks)


def _end(written: str | None) -> AgentEnd | None:
    """A node's end as the agent port names it."""
    if written is None:
        return None
    return EndReason.COMPLETED if written == EndReason.COMPLETED else EndReason.HANDOFF
