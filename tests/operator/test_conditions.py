"""The conditions Weft writes, as kubectl, kstatus (Flux) and Argo CD read them."""

from __future__ import annotations

from datetime import UTC, datetime

from weft_operator.conditions import (
    MAX_MESSAGE_CHARS,
    Verdict,
    bounded,
    desired_conditions,
    status_patch,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


def by_type(conditions: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {c["type"]: c for c in conditions}


def test_a_valid_resolved_object_is_ready_with_no_abnormal_conditions() -> None:
    found = by_type(desired_conditions(Verdict(generation=3)))
    assert {t: c["status"] for t, c in found.items()} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
        "Ready": "True",
    }
    assert all(c["observedGeneration"] == 3 for c in found.values())


def test_an_invalid_object_is_stalled_with_the_reason() -> None:
    found = by_type(desired_conditions(Verdict(1, invalid="spec.backends[0].weight: bad")))
    assert found["Accepted"]["status"] == "False"
    assert found["Accepted"]["reason"] == "Invalid"
    assert found["Stalled"]["status"] == "True"
    assert found["Ready"]["message"] == "spec.backends[0].weight: bad"
    assert "Reconciling" not in found


def test_missing_references_are_named_and_in_progress() -> None:
    found = by_type(desired_conditions(Verdict(1, missing=("Service ns/a (spec.service)",))))
    assert found["Accepted"]["status"] == "True"
    assert found["ResolvedRefs"]["status"] == "False"
    assert found["ResolvedRefs"]["message"] == "references not found: Service ns/a (spec.service)"
    assert found["Reconciling"]["status"] == "True"
    assert "Stalled" not in found


def test_no_patch_when_the_object_already_says_it() -> None:
    first = status_patch(Verdict(1), None, T0)
    assert first is not None
    assert status_patch(Verdict(1), first, T1) is None


def test_a_new_generation_is_acknowledged_and_unchanged_conditions_keep_their_time() -> None:
    first = status_patch(Verdict(1, missing=("x",)), None, T0)
    second = status_patch(Verdict(2, missing=("x",)), first, T1)
    assert second is not None
    assert second["observedGeneration"] == 2
    assert by_type(second["conditions"])["Accepted"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    third = status_patch(Verdict(2), second, T1)
    assert third is not None
    found = by_type(third["conditions"])
    assert found["ResolvedRefs"]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    assert "Reconciling" not in found  # dropped: a merge patch replaces the list whole


def test_programmed_counts_the_proxies_of_this_generation() -> None:
    from weft_operator.conditions import Convergence

    assert "Programmed" not in by_type(desired_conditions(Verdict(2)))  # no config server
    done = by_type(desired_conditions(Verdict(2, convergence=Convergence(2, 12, 12))))
    assert done["Programmed"]["status"] == "True"
    assert done["Programmed"]["message"] == "12/12 proxies"
    assert done["Ready"]["status"] == "True"  # the other conditions mean what they meant
    pending = by_type(desired_conditions(Verdict(2, convergence=Convergence(2, 3, 12))))
    assert (pending["Programmed"]["status"], pending["Programmed"]["reason"]) == (
        "False",
        "Pending",
    )
    older = by_type(desired_conditions(Verdict(3, convergence=Convergence(2, 12, 12))))
    assert older["Programmed"]["message"] == "waiting for proxies to acknowledge generation 3"
    invalid = Verdict(3, invalid="bad weight", convergence=Convergence(3, 0, 0))
    assert by_type(desired_conditions(invalid))["Programmed"]["reason"] == "Invalid"


def test_proxies_are_written_with_programmed_and_only_when_they_change() -> None:
    from weft_operator.conditions import Convergence

    first = status_patch(Verdict(1, convergence=Convergence(1, 0, 2)), None, T0)
    assert first is not None
    assert first["proxies"] == {"acked": 0, "total": 2}
    assert status_patch(Verdict(1, convergence=Convergence(1, 0, 2)), first, T1) is None
    second = status_patch(Verdict(1, convergence=Convergence(1, 2, 2)), first, T1)
    assert second is not None
    assert second["proxies"] == {"acked": 2, "total": 2}


def test_a_long_list_of_missing_references_names_the_first_and_counts_the_rest() -> None:
    missing = tuple(f"Service ns/b{i} (spec.backends[{i}].service)" for i in range(422))
    found = by_type(desired_conditions(Verdict(1, missing=missing)))
    message = str(found["ResolvedRefs"]["message"])
    assert message == ("references not found: " + ", ".join(missing[:10]) + ", and 412 more")
    assert found["Ready"]["message"] == found["Reconciling"]["message"] == message
    assert Verdict(1, missing=missing).problem == message  # what the Warning Event says


def test_references_too_long_to_list_are_shortened_and_still_counted() -> None:
    huge = "Service ns/" + "x" * 100_000 + " (spec.backends[0].service)"
    missing = (huge, *(f"Service ns/b{i} (spec.backends[{i}].service)" for i in range(1, 50)))
    message = str(desired_conditions(Verdict(1, missing=missing))[1]["message"])  # ResolvedRefs
    assert len(message) <= MAX_MESSAGE_CHARS
    assert message.startswith("references not found: Service ns/xxx")
    assert "more characters)" in message  # the huge name, cut
    assert message.endswith(" more")
    shown = message.count("Service ns/")
    assert message.endswith(f", and {50 - shown} more")


def test_a_long_reason_is_cut_with_how_much_was_left_out() -> None:
    reason = "spec.backends[0].service: " + "y" * 5000
    verdict = Verdict(1, invalid=reason)
    found = by_type(desired_conditions(verdict))
    message = str(found["Accepted"]["message"])
    assert len(message) == MAX_MESSAGE_CHARS
    kept, _, left_out = message.partition("... (")
    assert reason.startswith(kept)
    assert left_out == f"{len(reason) - len(kept)} more characters)"
    assert found["Ready"]["message"] == found["Stalled"]["message"] == message
    assert verdict.problem == message
    assert bounded(message) == message  # cutting twice changes nothing


def test_short_messages_are_left_as_they_are() -> None:
    assert bounded("x" * MAX_MESSAGE_CHARS) == "x" * MAX_MESSAGE_CHARS
    three = ("Service ns/a (spec.service)", "b", "c")
    assert desired_conditions(Verdict(1, missing=three))[1]["message"] == (
        "references not found: Service ns/a (spec.service), b, c"
    )


def test_an_unprogrammed_object_is_reconciling_for_kstatus() -> None:
    """Flux's kstatus reads Reconciling, not Programmed: while proxies lag, Flux must wait
    as Argo CD's health check does, and stop waiting once they caught up."""
    from weft_operator.conditions import Convergence

    pending = by_type(desired_conditions(Verdict(2, convergence=Convergence(2, 3, 12))))
    assert pending["Ready"]["status"] == "True"
    assert (pending["Reconciling"]["status"], pending["Reconciling"]["reason"]) == (
        "True",
        "Pending",
    )
    assert pending["Reconciling"]["message"] == "3/12 proxies"
    done = by_type(desired_conditions(Verdict(2, convergence=Convergence(2, 12, 12))))
    assert "Reconciling" not in done
    invalid = Verdict(2, invalid="bad weight", convergence=Convergence(2, 0, 1))
    assert "Reconciling" not in by_type(desired_conditions(invalid))  # Stalled says it
