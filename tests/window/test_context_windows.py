from retinue.models.windows import context_window_for, context_window_of
from retinue.testing.scripted import ScriptedModel


def test_families_and_dated_snapshots_resolve_to_their_listed_window() -> None:
    assert context_window_for("anthropic:claude-sonnet-4-5") == 200_000
    assert context_window_for("anthropic:claude-sonnet-4-5-20250929") == 200_000
    assert context_window_for("openai:gpt-4.1") == 1_047_576
    assert context_window_for("openai:gpt-4.1-mini-2025-04-14") == 1_047_576
    assert context_window_for("openai:gpt-4o-2024-08-06") == 128_000
    assert context_window_for("openai:gpt-5-mini") == 400_000
    assert context_window_for("openai:o3") == 200_000
    assert context_window_for("openai:o4-mini") == 200_000
    assert context_window_for("local:gemma3-270m") == 32_768


def test_the_longest_matching_family_wins() -> None:
    assert context_window_for("openai:gpt-5-chat-latest") == 128_000
    assert context_window_for("openai:gpt-5") == 400_000


def test_unknown_models_have_no_window() -> None:
    assert context_window_for("scripted:test") is None
    assert context_window_for("openai:my-fine-tune") is None


def test_a_model_that_knows_its_own_window_overrides_the_table() -> None:
    class SmallLocal(ScriptedModel):
        context_window = 4_096

        @property
        def model_id(self) -> str:
            return "local:gemma3-270m"

    assert context_window_of(SmallLocal(["hi"])) == 4_096
    assert context_window_of(ScriptedModel(["hi"])) is None
