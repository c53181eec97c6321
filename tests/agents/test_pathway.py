from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from reachout.agents import pathway as pathway_module
from reachout.agents.base import Agent, AgentTurn, ConversationView, EndReason, Line, Speaker
from reachout.agents.pathway import (
    EXAMPLE_THRESHOLD,
    EdgeSpec,
    PathwayAgent,
    PathwaySpec,
    content_words,
    placeholders,
    render,
    similarity,
)
from reachout.delivery.channels import Channel
from reachout.provisioning import loader

DEMO_FILE = Path(__file__).parents[2] / "demo.yaml"  # the demo ships the reminder; `make run` serves it
GREETING = (
    "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
    "Reply to this message if you need to reschedule."
)
RESCHEDULED_TO_3PM = "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm tomorrow. See you then!"
HANDOFF = "Thanks for your message \u2014 a member of our team will get back to you shortly."


def reminder_document() -> dict[str, Any]:
    [document] = yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8"))["pathways"]
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def reminder() -> PathwayAgent:
    return PathwayAgent(PathwaySpec.model_validate(reminder_document()))


@dataclass
class Chat:
    """A conversation as the service would keep it: each turn's history, variables and state fed back."""

    agent: Agent
    history: list[Line] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    ended: EndReason | None = None

    def view(self) -> ConversationView:
        return ConversationView(
            conversation_id="convo_0123456789abcdef01234567",
            project_id="clinic",
            channel=Channel.SMS,
            agent_number="+14155550100",
            user_number="+14155550123",
            history=tuple(self.history),
            metadata=dict(self.metadata),
            variables=dict(self.variables),
            state=dict(self.state),
        )

    def line(self, speaker: Speaker, text: str) -> None:
        at = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=len(self.history))
        self.history.append(Line(speaker, text, at))

    def apply(self, turn: AgentTurn) -> AgentTurn:
        self.variables.update(turn.variables)
        self.state = dict(turn.state)
        if turn.reply is not None:
            self.line(Speaker.AGENT, turn.reply)
        self.ended = turn.end
        return turn

    async def open(self, greeting: str = GREETING) -> AgentTurn:
        self.line(Speaker.AGENT, greeting)
        return self.apply(await self.agent.start(self.view()))

    async def say(self, text: str) -> AgentTurn:
        assert self.ended is None, "the conversation has ended"
        self.line(Speaker.USER, text)
        return self.apply(await self.agent.respond(self.view(), text))


async def opened(agent: PathwayAgent, greeting: str = GREETING) -> Chat:
    chat = Chat(agent)
    await chat.open(greeting)
    return chat


# --- the appointment reminder ----------------------------------------------------------------------------


def test_the_demo_provisions_the_reminder() -> None:
    document = loader.load(DEMO_FILE)
    [pathway] = document.pathways
    assert pathway == PathwaySpec.model_validate(reminder_document())
    assert (pathway.id, pathway.version) == ("appointment-reminder", 1)
    assert document.accounts[0].projects[0].agent == {"pathway": "appointment-reminder"}


def test_the_reminder_never_asks_for_the_bare_opt_out_word() -> None:
    spec = PathwaySpec.model_validate(reminder_document())
    for node in spec.nodes.values():
        for line in (node.say, node.reask):
            assert "CANCEL" not in (line or "")


async def test_start_reads_the_greeting_and_waits(reminder: PathwayAgent) -> None:
    chat = Chat(reminder)
    turn = await chat.open()
    assert turn.reply is None
    assert turn.end is None
    assert dict(turn.variables) == {"appointment_day": "tomorrow", "appointment_time": "2pm"}
    assert dict(turn.state) == {"pathway": "appointment-reminder", "version": 1, "node": "reminded"}


async def test_rescheduling_to_a_new_time(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("Can I move it to 3pm instead?")
    assert turn.reply == RESCHEDULED_TO_3PM
    assert turn.end is EndReason.COMPLETED
    assert chat.variables == {
        "appointment_day": "tomorrow",
        "appointment_time": "3pm",
        "outcome": "rescheduled",
    }
    assert [line.text for line in chat.history] == [
        GREETING,
        "Can I move it to 3pm instead?",
        RESCHEDULED_TO_3PM,
    ]


@pytest.mark.parametrize(
    "answer", ["yes, see you then", "Yes", "sounds good", "ok \N{THUMBS UP SIGN}", "Thanks!"]
)
async def test_confirming(reminder: PathwayAgent, answer: str) -> None:
    chat = await opened(reminder)
    turn = await chat.say(answer)
    assert turn.reply == "Great, thanks for confirming. See you then!"
    assert turn.end is EndReason.COMPLETED
    assert chat.variables == {
        "appointment_day": "tomorrow",
        "appointment_time": "2pm",
        "outcome": "confirmed",
    }


@pytest.mark.parametrize(
    "answer",
    [
        "I need to cancel my appointment",
        "can't make it, please cancel",
        "Please cancel it",
        "I don't need the appointment any more",
    ],
)
async def test_cancelling(reminder: PathwayAgent, answer: str) -> None:
    chat = await opened(reminder)
    turn = await chat.say(answer)
    assert turn.reply == "Thanks for letting us know \u2014 I\u2019ve cancelled your appointment."
    assert turn.end is EndReason.COMPLETED
    assert chat.variables["outcome"] == "cancelled"


async def test_rescheduling_to_another_time_with_minutes(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("could we do 10:30am?")
    assert (
        turn.reply
        == "Of course \u2014 I\u2019ve rescheduled your appointment to 10:30am tomorrow. See you then!"
    )
    assert turn.end is EndReason.COMPLETED


async def test_rescheduling_without_a_time_asks_for_one(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("I'd like to reschedule")
    assert turn.reply == "No problem. What time would suit you?"
    assert turn.end is None
    assert chat.state["node"] == "ask_time"
    turn = await chat.say("4pm")
    assert (
        turn.reply == "Of course \u2014 I\u2019ve rescheduled your appointment to 4pm tomorrow. See you then!"
    )
    assert turn.end is EndReason.COMPLETED
    assert chat.variables["appointment_time"] == "4pm"


async def test_an_unclear_answer_is_asked_again_then_handed_off(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("what?")
    assert turn.reply is not None
    assert turn.reply.startswith("Sorry, I didn\u2019t quite catch that.")
    assert turn.end is None
    assert chat.state == {"pathway": "appointment-reminder", "version": 1, "node": "reminded", "reasks": 1}
    turn = await chat.say("hmm")
    assert turn.reply == HANDOFF
    assert turn.end is EndReason.HANDOFF
    assert chat.variables["outcome"] == "handoff"


async def test_a_clear_answer_after_a_reask_carries_on(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    await chat.say("hmm")
    turn = await chat.say("yep")
    assert turn.reply == "Great, thanks for confirming. See you then!"
    assert chat.state == {"pathway": "appointment-reminder", "version": 1, "node": "confirmed"}


async def test_a_day_in_the_answer_replaces_the_greetings(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("Friday at 3pm")
    assert (
        turn.reply
        == "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm on Friday. See you then!"
    )
    assert chat.variables["appointment_day"] == "on Friday"


async def test_a_day_without_a_time_asks_for_a_time_that_day(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("No, I can\u2019t make it tomorrow, can we do next Tuesday?")
    assert turn.reply == "No problem. What time next Tuesday would suit you?"
    await chat.say("hmm")  # asked again, naming the day
    assert chat.history[-1].text.startswith("Sorry, I didn\u2019t catch that. What time next Tuesday")
    turn = await chat.say("noon")
    assert (
        turn.reply
        == "Of course \u2014 I\u2019ve rescheduled your appointment to noon next Tuesday. See you then!"
    )


async def test_a_no_offers_another_time(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("no")
    assert turn.reply is not None
    assert turn.reply.startswith("Sorry to hear that. Would you like another time?")
    turn = await chat.say("yes please")
    assert turn.reply == "No problem. What time would suit you?"
    turn = await chat.say("how about 9am the day after tomorrow")
    assert turn.reply == (
        "Of course \u2014 I\u2019ve rescheduled your appointment to 9am the day after tomorrow. See you then!"
    )


async def test_a_time_the_person_moves_away_from_is_not_taken(reminder: PathwayAgent) -> None:
    chat = await opened(reminder)
    turn = await chat.say("I can't do 2pm, could we make it later?")
    assert turn.reply == "No problem. What time would suit you?"
    assert chat.variables["appointment_time"] == "2pm"


# --- the agent, on small pathways --------------------------------------------------------------------------


def spec(nodes: Mapping[str, Any], start: str = "ask", **fields: Any) -> PathwaySpec:
    return PathwaySpec.model_validate({"id": "p", "version": 1, "start": start, "nodes": nodes, **fields})


COUNT = {
    "ask": {
        "extract": {"guests": "number", "coming": "yes_no"},
        "reask": "How many of you, {metadata.name}?",
        "max_reasks": 2,
        "edges": [
            {"to": "many", "has": "guests", "regex": r"\b(?:[2-9]|two|three)\b"},
            {"to": "one", "has": "guests"},
            {"to": "none", "answer": "no"},
            {"to": "ask", "keywords": ["wait", "hang on"]},
            {"to": "staff", "otherwise": True},
        ],
    },
    "many": {"say": "{guests} of you, {{noted}}; coming: {coming}.", "end": "completed"},
    "one": {"say": "Just {guests}.", "set": {"party": False, "size": 1.0}, "end": "completed"},
    "none": {"say": "Sorry you can't come{metadata.suffix}.", "end": "completed"},
    "staff": {"say": "Someone will call.", "end": "handoff"},
}


async def test_edges_are_tried_in_order_and_all_their_conditions_must_hold() -> None:
    agent = PathwayAgent(spec(COUNT))
    chat = await opened(agent, "How many of you are coming?")
    assert (await chat.say("yes, two of us")).reply == "2 of you, {noted}; coming: yes."

    chat = await opened(agent, "How many of you are coming?")
    turn = await chat.say("just the 1")  # has guests, but the regex does not hold
    assert turn.reply == "Just 1."
    assert dict(turn.variables) == {"guests": 1, "party": False, "size": 1.0}


async def test_reasks_up_to_max_reasks_with_metadata_filled_in() -> None:
    chat = Chat(PathwayAgent(spec(COUNT)), metadata={"name": "Jane"})
    await chat.open("How many?")
    for count in (1, 2):
        turn = await chat.say("hmm")
        assert turn.reply == "How many of you, Jane?"
        assert chat.state["reasks"] == count
    assert (await chat.say("hmm")).end is EndReason.HANDOFF


async def test_an_edge_back_to_the_same_node_says_nothing_and_resets_the_reasks() -> None:
    chat = await opened(PathwayAgent(spec(COUNT)), "How many?")
    await chat.say("hmm")
    turn = await chat.say("hang on")
    assert turn.reply is None
    assert chat.state == {"pathway": "p", "version": 1, "node": "ask"}


async def test_a_placeholder_without_a_value_renders_empty_and_the_spacing_is_tidied() -> None:
    chat = await opened(PathwayAgent(spec(COUNT)), "How many?")
    assert (await chat.say("no")).reply == "Sorry you can't come."


async def test_respond_without_a_recorded_start_begins_at_the_start() -> None:
    chat = Chat(PathwayAgent(PathwaySpec.model_validate(reminder_document())))
    chat.line(Speaker.AGENT, GREETING)
    turn = await chat.say("Can I move it to 3pm instead?")
    assert turn.reply == RESCHEDULED_TO_3PM
    assert dict(turn.variables) == {
        "appointment_day": "tomorrow",
        "appointment_time": "3pm",
        "outcome": "rescheduled",
    }


async def test_start_without_a_greeting_extracts_nothing(reminder: PathwayAgent) -> None:
    turn = await Chat(reminder).agent.start(Chat(reminder).view())
    assert dict(turn.variables) == {}
    assert turn.reply is None


@pytest.mark.parametrize(
    "state",
    [
        {"pathway": "another", "version": 1, "node": "reminded"},
        {"pathway": "appointment-reminder", "version": 1, "node": "gone"},
        {"pathway": "appointment-reminder", "version": 1, "node": 7},
        {"pathway": "appointment-reminder", "version": 1, "node": "reminded", "reasks": -1},
        {"pathway": "appointment-reminder", "version": 1, "node": "reminded", "reasks": True},
    ],
)
async def test_a_state_that_is_no_node_of_this_pathway_hands_off_silently(
    reminder: PathwayAgent, state: dict[str, Any]
) -> None:
    chat = Chat(reminder, state=state)
    turn = await reminder.respond(chat.view(), "yes")
    assert (turn.reply, turn.end, dict(turn.state)) == (None, EndReason.HANDOFF, state)


async def test_a_conversation_from_an_earlier_version_carries_on_at_its_node() -> None:
    agent = PathwayAgent(PathwaySpec.model_validate({**reminder_document(), "version": 2}))
    chat = Chat(
        agent, state={"pathway": "appointment-reminder", "version": 1, "node": "ask_time", "reasks": 1}
    )
    chat.line(Speaker.AGENT, GREETING)
    turn = await chat.say("hmm")
    assert turn.end is EndReason.HANDOFF  # its one reask was already spent
    assert chat.state["version"] == 2


async def test_an_answer_after_the_end_changes_nothing(reminder: PathwayAgent) -> None:
    state = {"pathway": "appointment-reminder", "version": 1, "node": "confirmed"}
    turn = await reminder.respond(Chat(reminder, state=state).view(), "thanks")
    assert (turn.reply, turn.end, dict(turn.state), dict(turn.variables)) == (
        None,
        EndReason.COMPLETED,
        state,
        {},
    )


NODES = ["reminded", "ask_time", "ask_time_on_day", "declined"]
ANSWERS = st.text() | st.lists(
    st.sampled_from(["yes", "no", "cancel", "3pm", "friday", "move it", "what", "?", "hmm", "\n"])
).map(" ".join)


@given(node=st.sampled_from(NODES), reasks=st.integers(0, 3), text=ANSWERS)
async def test_any_answer_at_any_node_leads_somewhere_and_the_same_call_gives_the_same_turn(
    reminder: PathwayAgent, node: str, reasks: int, text: str
) -> None:
    state = {"pathway": "appointment-reminder", "version": 1, "node": node, "reasks": reasks}
    view = Chat(
        reminder, variables={"appointment_day": "tomorrow", "appointment_time": "2pm"}, state=state
    ).view()
    turn = await reminder.respond(view, text)
    assert turn == await reminder.respond(view, text)  # a retried call must not see the first one
    assert turn.state["node"] in reminder.spec.nodes
    target = reminder.spec.nodes[turn.state["node"]]
    assert turn.end == target.end
    assert turn.reply is not None
    assert "{" not in turn.reply


# --- conditions, similarity and templates ----------------------------------------------------------------


async def edge_holds(text: str, extract: Mapping[str, str] | None = None, **condition: Any) -> bool:
    """Whether an edge with `condition` takes the answer `text`, as `respond` decides it."""
    nodes = {
        "ask": {
            "extract": extract or {},
            "edges": [{"to": "held", **condition}, {"to": "not", "otherwise": True}],
        },
        "held": {"say": "held", "end": "completed"},
        "not": {"say": "not", "end": "completed"},
    }
    chat = await opened(PathwayAgent(spec(nodes)), "A question?")
    return (await chat.say(text)).reply == "held"


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("Please CANCEL it", True),
        ("cancel.", True),
        ("cancellation", False),  # whole words only
        ("I need to  call   it off", True),
        ("I can\u2019t make it", True),  # typographic apostrophes match plain ones
        ("I cant make it", False),
        ("uncancelled", False),
    ],
)
async def test_keywords_match_whole_words_and_phrases_in_any_case(text: str, holds: bool) -> None:
    assert await edge_holds(text, keywords=["cancel", "call it off", "can't make it"]) is holds


async def test_regex_searches_anywhere_ignoring_case() -> None:
    assert await edge_holds("I want to RESCHEDULE", regex=r"\bresched")
    assert not await edge_holds("I want to keep it", regex=r"\bresched")


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("that time doesn't work for me", True),
        ("Sorry, that time doesnt really work", True),
        ("the tme doesnt wrk", True),  # typos, in words of four letters or more
        ("that time works for me", False),  # "doesn't" is not a common word
        ("that time does work", False),  # and a negation matches only exactly
        ("dosen't work", False),
        ("time", False),
        ("", False),
    ],
)
async def test_examples_match_by_the_share_of_their_words_present(text: str, holds: bool) -> None:
    assert await edge_holds(text, examples=["that time doesn't work for me", "could we change it"]) is holds


def test_similarity_is_the_share_of_the_examples_content_words() -> None:
    example = content_words("I'd like to reschedule my appointment")
    assert example == ("like", "reschedule", "appointment")
    assert similarity(example, content_words("I would like to reschedule")) == pytest.approx(2 / 3)
    assert similarity(example, content_words("like to reshedule the appointmnt")) == 1.0
    assert similarity((), content_words("anything")) == 0.0
    assert EXAMPLE_THRESHOLD == 0.75


async def test_has_holds_when_this_answer_gave_the_variable() -> None:
    assert await edge_holds("3pm", {"when": "time"}, has="when")
    assert not await edge_holds("whenever", {"when": "time"}, has="when")


async def test_answer_holds_for_a_yes_or_a_no() -> None:
    assert await edge_holds("sure", answer="yes")
    assert not await edge_holds("sure", answer="no")
    assert await edge_holds("nope", answer="no")
    assert not await edge_holds("hmm", answer="yes")
    assert not await edge_holds("hmm", answer="no")


@pytest.mark.parametrize(
    ("template", "variables", "metadata", "expected"),
    [
        ("At {time} {day}.", {"time": "3pm", "day": "tomorrow"}, {}, "At 3pm tomorrow."),
        ("At {time} {day}.", {"time": "3pm"}, {}, "At 3pm."),
        (
            "Hi {metadata.name}, {n} guests, parking: {p}",
            {"n": 2.0, "p": True},
            {"name": "Jo"},
            "Hi Jo, 2 guests, parking: yes",
        ),
        ("{{literal}} and {x}", {"x": 3.5}, {}, "{literal} and 3.5"),
        ("Hello {metadata.name} !", {}, {}, "Hello!"),
    ],
)
def test_render(template: str, variables: dict[str, Any], metadata: dict[str, Any], expected: str) -> None:
    assert render(template, variables, metadata) == expected


def test_placeholders() -> None:
    assert placeholders("{a} {{b}} {metadata.first-name} {c_1}") == ["a", "metadata.first-name", "c_1"]
    for template, problem in [
        ("oops {", "unmatched '{'"),
        ("oops }", "unmatched '}'"),
        ("{not a name}", "is not a placeholder"),
        ("{}", "is not a placeholder"),
        ("{metadata.}", "is not a placeholder"),
    ]:
        with pytest.raises(ValueError, match=problem):
            placeholders(template)


# --- validation ------------------------------------------------------------------------------------------

END = {"say": "Bye.", "end": "completed"}
ASK = {"say": "Yes?", "extract": {"when": "time"}, "edges": [{"to": "done", "otherwise": True}]}


def problems(document: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        PathwaySpec.model_validate(document)
    assert isinstance(caught.value, ValueError)
    return [(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()]


def pathway(**nodes: Any) -> dict[str, Any]:
    return {"id": "p", "version": 1, "start": "ask", "nodes": {"ask": ASK, "done": END, **nodes}}


@pytest.mark.parametrize(
    ("document", "location", "message"),
    [
        ({**pathway(), "start": "nowhere"}, ("start",), "no node is called 'nowhere'"),
        ({**pathway(), "start": "done"}, ("start",), "the start node cannot be an end node"),
        ({**pathway(), "version": 0}, ("version",), "greater than 0"),
        ({**pathway(), "id": "has spaces"}, ("id",), "should match pattern"),
        ({**pathway(), "colour": "red"}, ("colour",), "Extra inputs are not permitted"),
        ({**pathway(), "nodes": {}}, ("nodes",), "at least 1 item"),
        (
            pathway(ask={**ASK, "edges": [{"to": "nowhere", "otherwise": True}]}),
            ("nodes", "ask", "edges", 0, "to"),
            "no node is called 'nowhere'",
        ),
        (
            pathway(done={**END, "say": "At {when} for {whom}."}),
            ("nodes", "done", "say"),
            "'{whom}' is not a variable a node extracts or sets",
        ),
        (pathway(done={**END, "say": "At {when"}), ("nodes", "done", "say"), "unmatched '{'"),
        (
            pathway(ask={**ASK, "reask": "When, {who}?"}),
            ("nodes", "ask", "reask"),
            "'{who}' is not a variable",
        ),
        (
            pathway(
                ask={
                    **ASK,
                    "edges": [{"to": "done", "regex": "(unclosed"}, {"to": "done", "otherwise": True}],
                }
            ),
            ("nodes", "ask", "edges", 0, "regex"),
            "not a valid regular expression",
        ),
        (pathway(ask={"say": "Yes?"}), ("nodes", "ask", "edges"), "a node without edges must be an end node"),
        (
            pathway(ask={**ASK, "edges": [{"to": "done", "keywords": ["x"]}]}),
            ("nodes", "ask", "edges", 0),
            "the last edge must be `otherwise: true`",
        ),
        (
            pathway(
                ask={**ASK, "edges": [{"to": "done", "otherwise": True}, {"to": "done", "otherwise": True}]}
            ),
            ("nodes", "ask", "edges", 0),
            "edges after an `otherwise` edge are never tried",
        ),
        (
            pathway(ask={**ASK, "edges": [{"to": "done", "otherwise": True, "keywords": ["x"]}]}),
            ("nodes", "ask", "edges", 0),
            "cannot have other conditions",
        ),
        (
            pathway(ask={**ASK, "edges": [{"to": "done"}, {"to": "done", "otherwise": True}]}),
            ("nodes", "ask", "edges", 0),
            "an edge needs a condition",
        ),
        (
            pathway(ask={**ASK, "edges": [{"to": "done", "has": "who"}, {"to": "done", "otherwise": True}]}),
            ("nodes", "ask", "edges", 0, "has"),
            "'who' is not extracted by this node",
        ),
        (
            pathway(
                ask={**ASK, "edges": [{"to": "done", "keywords": []}, {"to": "done", "otherwise": True}]}
            ),
            ("nodes", "ask", "edges", 0, "keywords"),
            "at least 1 item",
        ),
        (
            pathway(
                ask={**ASK, "edges": [{"to": "done", "keywords": ["!!"]}, {"to": "done", "otherwise": True}]}
            ),
            ("nodes", "ask", "edges", 0, "keywords"),
            "has no letters or digits",
        ),
        (
            pathway(
                ask={
                    **ASK,
                    "edges": [{"to": "done", "examples": ["to the"]}, {"to": "done", "otherwise": True}],
                }
            ),
            ("nodes", "ask", "edges", 0, "examples"),
            "has no words left",
        ),
        (
            pathway(
                ask={**ASK, "edges": [{"to": "done", "answer": "maybe"}, {"to": "done", "otherwise": True}]}
            ),
            ("nodes", "ask", "edges", 0, "answer"),
            "Input should be 'yes' or 'no'",
        ),
        (
            pathway(ask={**ASK, "extract": {"when": "colour"}}),
            ("nodes", "ask", "extract", "when"),
            "Input should be",
        ),
        (
            pathway(ask={**ASK, "extract": {"2when": "time"}}),
            ("nodes", "ask", "extract", "2when", "[key]"),
            "pattern",
        ),
        (pathway(ask={**ASK, "max_reasks": 2}), ("nodes", "ask", "max_reasks"), "max_reasks needs a `reask`"),
        (
            pathway(ask={**ASK, "max_reasks": 0, "reask": "?"}),
            ("nodes", "ask", "max_reasks"),
            "greater than 0",
        ),
        (
            pathway(done={**END, "edges": [{"to": "ask", "otherwise": True}]}),
            ("nodes", "done", "edges"),
            "an end node takes no answers",
        ),
        (pathway(done={**END, "reask": "?"}), ("nodes", "done", "reask"), "an end node takes no answers"),
        (pathway(done={**END, "end": "finished"}), ("nodes", "done", "end"), "'completed' or 'handoff'"),
        (pathway(done={**END, "set": {"x": [1]}}), ("nodes", "done", "set", "x", "str"), "valid string"),
    ],
)
def test_a_pathway_is_checked_when_loaded(
    document: dict[str, Any], location: tuple[Any, ...], message: str
) -> None:
    found = problems(document)
    assert any(loc == location and message in msg for loc, msg in found), found


def test_every_problem_is_reported_at_once_at_its_path_inside_a_larger_file() -> None:
    class File(BaseModel):
        pathways: list[PathwaySpec]

    broken = pathway(
        ask={**ASK, "edges": [{"to": "gone", "has": "when"}, {"to": "also_gone", "otherwise": True}]},
        done={**END, "say": "{nobody}"},
    )
    with pytest.raises(ValidationError) as caught:
        File.model_validate({"pathways": [pathway(), broken]})
    assert sorted(tuple(e["loc"]) for e in caught.value.errors()) == [
        ("pathways", 1, "nodes", "ask", "edges", 0, "to"),
        ("pathways", 1, "nodes", "ask", "edges", 1, "to"),
        ("pathways", 1, "nodes", "done", "say"),
    ]


def test_a_yaml_yes_or_no_is_an_answer() -> None:
    loaded = yaml.safe_load("{to: done, answer: yes}")
    assert loaded["answer"] is True  # YAML 1.1, as PyYAML reads it
    assert EdgeSpec.model_validate(loaded).answer == "yes"
    assert EdgeSpec.model_validate({"to": "done", "answer": False}).answer == "no"


def test_a_pathway_is_frozen() -> None:
    loaded = PathwaySpec.model_validate(pathway())
    with pytest.raises(ValidationError):
        loaded.version = 2  # type: ignore[misc]
    assert loaded.variables == {"when"}
    assert spec(COUNT).variables == {"guests", "coming", "party", "size"}


def test_a_pathway_survives_being_stored_as_json_and_read_back() -> None:
    loaded = PathwaySpec.model_validate(reminder_document())
    stored = json.loads(json.dumps(loaded.model_dump(mode="json", by_alias=True)))
    assert PathwaySpec.model_validate(stored) == loaded


async def test_the_example_in_the_module_docstring_loads_and_runs() -> None:
    assert pathway_module.__doc__ is not None
    example = pathway_module.__doc__.split("::\n", 1)[1].split("\n\n", 1)[0]
    agent = PathwayAgent(PathwaySpec.model_validate(yaml.safe_load(example)))
    chat = await opened(agent, "Your appointment is at 2pm.")
    assert chat.variables == {"appointment_time": "2pm"}
    assert (await chat.say("I need to reschedule")).reply == "Done, see you at 2pm."
    chat = await opened(agent, "Your appointment is at 2pm.")
    assert (await chat.say("can we do 4:15pm")).reply == "Done, see you at 4:15pm."
