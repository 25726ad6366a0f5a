"""detect_window: the detection stage for one stored window, in the caller's transaction.

Reads the window's counts and their history, finds peaks (spike, burst, new, regression), groups many rising
problems into one cascade, marks known recurring peaks, sets severity from the rules, explains each peak,
applies the alert policy and writes peaks, incidents and known peaks — replacing this window's rows, so
re-running a window gives the same result and never a second alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from orjson import dumps

from tasks.counting import WindowCounts
from tasks.detection.alert_policy import (
    Alert,
    apply_policy,
    close_quiet_incidents,
    extend_incident,
    related_alerted,
    remember_members,
    window_label,
)
from tasks.detection.baseline import MIN_RATE, compute_baseline, slot_frame
from tasks.detection.explain import describe, explain, load_dimensions
from tasks.detection.history import load_history, load_window
from tasks.detection.history_cache import HistoryCache
from tasks.detection.known_peaks import learn_known_peaks, load_known, match_known
from tasks.detection.live import Liveness, judge_liveness, missed_entry
from tasks.detection.peaks import Candidate, find_burst, find_spike, peak_id
from tasks.detection.rules import DetectionRules
from tasks.grouping.engine import display_template
from tasks.models import Peak, Window, iso_z
from tasks.store.copy_text import array_literal

MODES = ("backfill", "regular", "catchup")
WEAK_MIN_COUNT = 3  # a problem rising at least this much counts towards its application's combined rise


@dataclass
class DetectionResult:
    peaks: list[Peak] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    missed: list[dict] = field(default_factory=list)  # critical, but too old to alert alone: the late summary
    recovered: list[dict] = field(default_factory=list)  # alerted incidents closed by this window's quiet


def detect_window(conn: psycopg.Connection, window: Window, *, rules: DetectionRules, mode: str,
                  liveness: Liveness | None = None, history_cache: HistoryCache | None = None,
                  counts: WindowCounts | None = None) -> DetectionResult:
    """Judge one stored window. ``liveness`` says whether its critical peaks may alert now (and how late);
    without it, regular windows alert, catch-up windows go to the late summary and backfill never alerts.
    ``history_cache`` (one per run) carries the history from one window to the next instead of re-reading it.
    ``counts``: the window's counts as stored in this transaction (not read back; see `load_window`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if liveness is None:
        liveness = judge_liveness(mode, window, None, timedelta(0))
    data = load_window(conn, window, counts=counts)
    pairs = sorted(data.totals)
    history = load_history(conn, window, pairs) if history_cache is None else history_cache.load(conn, window, pairs)
    warm = history.first_window is not None and window.start - history.first_window >= timedelta(
        hours=rules.t("warmup_hours"))
    frame = slot_frame(window.start, history.processed)  # shared by every pair's baseline
    serious_minimum: dict[str, int | None] = {}  # per problem, shared by its applications
    candidates: list[Candidate] = []
    weak: list[Peak] = []  # rising, but too small alone to be a peak: judged with the app's other rises
    baselines = {}
    problems_seen_now = {p for p, _ in pairs}
    seen_now = array_literal(sorted(problems_seen_now))  # the ids for this window's queries, formatted once
    new_problems = {p for p in problems_seen_now if p not in history.seen_before}
    quiet = timedelta(days=rules.t("regression_quiet_days"))
    reported_before = set(conn.execute(
        "SELECT problem_id, app FROM peaks WHERE window_start = %s AND kind IN ('spike', 'burst')",
        (window.start - (window.end - window.start),)).fetchall())
    stored_templates = dict(conn.execute(
        "SELECT problem_id, template FROM grouping_templates WHERE problem_id = ANY(%s::text[])",
        (seen_now,)).fetchall())
    for key in pairs:
        problem_id, app = key
        count = data.totals[key]
        if problem_id in new_problems:
            if warm and count >= rules.t("new_min_count"):
                candidates.append(Candidate(problem_id, app, "new", window.start, window.end, count, 0.0, 0.0,
                                            ["first time this error was seen"]))
            continue
        last = history.seen_before.get(problem_id)
        if last is not None and window.start - last >= quiet and count >= rules.t("regression_min_count"):
            candidates.append(Candidate(problem_id, app, "regression", window.start, window.end, count, 0.0, 0.0,
                                        [f"back after {(window.start - last).days} quiet days"]))
            continue
        baseline = compute_baseline(window.start, history.processed, history.series.get(key, {}),
                                    history.peak_windows.get(key, set()), frame=frame)
        if baseline is None:
            continue
        baselines[key] = baseline
        found = find_spike(problem_id, app, window.start, window.end, count, baseline, rules)
        tail = [] if key in reported_before else data.previous_tail.get(key, [])
        burst = find_burst(problem_id, app, window.start, data.minutes.get(key, []), tail, baseline, rules)
        if found is None:
            found = burst
        elif burst is not None and burst.count >= 0.6 * count:
            found = burst  # concentrated in a few minutes: a burst, not a window-long rise
        if found is None:
            found = _serious(problem_id, app, window, count, baseline, rules, data, stored_templates, serious_minimum)
        if found is not None:
            candidates.append(found)
        elif count >= WEAK_MIN_COUNT and count >= rules.t("spike_min_ratio") * baseline.expected:
            weak.append(Peak(peak_id=peak_id(problem_id, app, "spike", window.start), problem_id=problem_id, app=app,
                             kind="spike", start=window.start, end=window.end, count=count,
                             baseline=round(baseline.expected, 3), ratio=round(count / baseline.expected, 2),
                             severity="low"))

    muted = {r[0] for r in conn.execute("SELECT problem_id FROM problems WHERE muted AND problem_id = ANY(%s::text[])",
                                        (seen_now,))}
    templates = {pid: display_template(stored_templates[pid]) for pid in {c.problem_id for c in candidates}
                 if pid in stored_templates}  # what peaks and alerts show: only the candidates' are needed
    first_seen = dict(conn.execute("SELECT problem_id, first_seen FROM problems WHERE problem_id = ANY(%s::text[])",
                                   (seen_now,)).fetchall())
    known = load_known(conn, pairs)
    current_dims, past_dims = load_dimensions(conn, window.start, sorted({c.problem_id for c in candidates}))

    peaks: list[Peak] = []
    for c in candidates:
        text = f"{templates.get(c.problem_id, '')}\n{data.samples.get(c.problem_id, '')}"
        level, rule_name = rules.classify(kind=c.kind, count=c.count, ratio=c.ratio, apps=1,
                                          error_type=data.error_types.get(c.problem_id), text=text)
        p = Peak(peak_id=peak_id(c.problem_id, c.app, c.kind, window.start), problem_id=c.problem_id, app=c.app,
                 kind=c.kind, start=c.start, end=c.end, count=c.count, baseline=round(c.expected, 3),
                 ratio=round(c.ratio, 2) if c.expected else 0.0, severity=level,
                 reasons=[*c.reasons, f"severity rule: {rule_name}"])
        kp = match_known(known.get((c.problem_id, c.app), []), c.start) if c.kind in ("spike", "burst") else None
        if kp is not None:
            larger = c.count > rules.t("known_peak_larger_than_usual") * max(kp.typical_count, 1.0)
            p.known_peak_id = kp.known_peak_id
            p.known = not larger
            p.reasons.append("matches a known recurring peak" + (" but is clearly larger than usual" if larger else ""))
        p.explanation = explain(c.count, c.expected, current_dims.get((c.problem_id, c.app), {}),
                                past_dims.get((c.problem_id, c.app), {}))
        peaks.append(p)

    cascade = _cascade(peaks, window, rules)
    groups = [] if cascade else _app_groups(peaks, window, rules, weak, baselines)
    result = DetectionResult(peaks=[*peaks, *([cascade] if cascade else []), *groups])
    _alert(conn, result, window, rules, liveness, muted, [g for g in (cascade, *groups) if g], data, templates,
           first_seen)
    _write_peaks(conn, window, result.peaks)
    learn_known_peaks(conn, window.start, [(p.problem_id, p.app, p.start) for p in peaks if p.kind in ("spike", "burst")],
                      min_days=int(rules.t("known_peak_min_days")), tolerance=int(rules.t("known_peak_tolerance_minutes")))
    if history_cache is not None:
        history_cache.remember(conn, window, data.totals)
    return result


def _serious(problem_id: str, app: str, window: Window, count: int, baseline, rules: DetectionRules, data,
             templates: dict, minimums: dict[str, int | None]) -> Candidate | None:
    """Always-serious errors (per the severity rules) are peaks from a few events above their usual level.
    The rules look at the problem's text, the same for all its applications: matched once per problem, and
    only for counts clearly above usual (the numbers are cheaper than the rules' patterns)."""
    if count < rules.t("spike_min_ratio") * baseline.expected:
        return None
    if baseline.z_score(count) < rules.t("spike_min_z"):  # a few serious errors, but clearly above usual
        return None
    if problem_id not in minimums:
        text = f"{templates.get(problem_id, '')}\n{data.samples.get(problem_id, '')}"
        minimums[problem_id] = rules.serious_min_count(data.error_types.get(problem_id), text)
    minimum = minimums[problem_id]
    if minimum is None or count < minimum:
        return None
    return Candidate(problem_id, app, "spike", window.start, window.end, count, baseline.expected,
                     baseline.z_score(count), [f"{count} always-serious errors vs {baseline.expected:.1f} expected"])


def _cascade(peaks: list[Peak], window: Window, rules: DetectionRules) -> Peak | None:
    """Many problems/apps rising together are one incident, not twenty alerts."""
    rising = [p for p in peaks if not p.known]
    apps = {p.app for p in rising}
    if len(rising) < rules.t("cascade_min_peaks") or len(apps) < rules.t("cascade_min_apps"):
        return None
    top = max(rising, key=lambda p: (p.count - p.baseline, p.problem_id))
    total = sum(p.count for p in rising)
    expected = sum(p.baseline for p in rising)
    level, rule_name = rules.classify(kind="cascade", count=total, ratio=total / max(expected, 0.05), apps=len(apps),
                                      error_type=None, text="")
    cascade = Peak(peak_id=peak_id("cascade", "*", "cascade", window.start), problem_id=top.problem_id,
                   app=f"{len(apps)} apps", kind="cascade", start=min(p.start for p in rising),
                   end=max(p.end for p in rising), count=total, baseline=round(expected, 3),
                   ratio=round(total / max(expected, 0.05), 2), severity=level,
                   reasons=[f"{len(rising)} problems rising together in {len(apps)} applications",
                            f"severity rule: {rule_name}"],
                   explanation=[{"field": "app", "value": a, "share": round(sum(p.count for p in rising if p.app == a)
                                                                            / max(total, 1), 3)}
                                for a in sorted(apps)][:5])
    cascade.members = [{"problem_id": p.problem_id, "app": p.app, "kind": p.kind, "count": p.count} for p in rising]
    return cascade


def _app_groups(peaks: list[Peak], window: Window, rules: DetectionRules, weak: list[Peak] = (),
                baselines: dict | None = None) -> list[Peak]:
    """Several problems of one application rising in the same window are one incident (one failing
    dependency throws several error types, or one error spread over several problems by an enumerated word):
    judged on their combined size, alerted once. Only created when the combination is more severe than every
    member alone; rises too small to be peaks alone count when their sum is clearly above the noise."""
    by_app: dict[str, list[Peak]] = {}
    for p in [*peaks, *weak]:
        if not p.known:
            by_app.setdefault(p.app, []).append(p)
    groups = []
    rank = {"critical": 4, "high": 3, "medium": 2, "low": 1}
    for app, members in sorted(by_app.items()):
        if len(members) < 2:
            continue
        total = sum(p.count for p in members)
        expected = sum(p.baseline for p in members)
        ratio = total / max(expected, 0.05)
        if any(p in weak for p in members) and not _clearly_above_noise(members, total, expected, baselines or {}, rules):
            continue
        level, rule_name = rules.classify(kind="spike", count=total, ratio=ratio, apps=1, error_type=None, text="")
        critical_members = sum(1 for p in members if p.severity == "critical")
        if rank[level] <= max(rank[p.severity] for p in members) and not (level == "critical" and critical_members >= 2):
            continue  # one message listing every critical member, not one per member
        top = max(members, key=lambda p: (p.count - p.baseline, p.problem_id))
        group = Peak(peak_id=peak_id(f"group:{app}", app, "cascade", window.start), problem_id=top.problem_id, app=app,
                     kind="cascade", start=min(p.start for p in members), end=max(p.end for p in members), count=total,
                     baseline=round(expected, 3), ratio=round(ratio, 2), severity=level,
                     reasons=[f"{len(members)} problems of {app} rising together", f"severity rule: {rule_name}"],
                     explanation=[{"field": "app", "value": app, "share": 1.0}, *top.explanation[:2]])
        group.members = [{"problem_id": p.problem_id, "app": p.app, "kind": p.kind, "count": p.count} for p in members]
        groups.append(group)
    return groups


def _clearly_above_noise(members: list[Peak], total: int, expected: float, baselines: dict,
                         rules: DetectionRules) -> bool:
    """The combined rise passes the spike test on the summed negative-binomial variance of its members."""
    if total < rules.t("spike_min_count") or total < rules.t("spike_min_ratio") * expected:
        return False
    var = 0.0
    for p in members:
        b = baselines.get((p.problem_id, p.app))
        mu = max(p.baseline, MIN_RATE)
        var += mu + (b.dispersion if b else 2.0) * mu * mu
    return (total - expected) / math.sqrt(var) >= rules.t("spike_min_z")


def _alert(conn, result: DetectionResult, window: Window, rules: DetectionRules, liveness: Liveness,
           muted: set[str], groups: list[Peak], data, templates: dict, first_seen: dict) -> None:
    cooldown = timedelta(minutes=rules.alerting["cooldown_minutes"])
    worse = rules.alerting["worse_factor"]
    quiet = timedelta(minutes=rules.alerting["close_after_quiet_minutes"])
    result.recovered = close_quiet_incidents(conn, window.start, quiet)
    members = {(m["problem_id"], m["app"]): g for g in groups for m in g.members}
    for p in result.peaks:
        if p.kind != "cascade" and (p.problem_id, p.app) in members:
            continue  # the cascade speaks for its members
        critical = p.severity == "critical" and not p.known and p.problem_id not in muted
        incident_key_peak = p if p.kind != "cascade" else _cascade_key(p)
        related = None
        if critical:  # the same failure already alerted under another id or grouping: one message, unless worse
            apps = {m["app"] for m in p.members} if p.kind == "cascade" else {p.app}
            related = related_alerted(conn, (incident_key_peak.problem_id, incident_key_peak.app), apps,
                                      window.start, window.end, quiet)
            if related is not None and p.count >= worse * max(related[1], 1.0):
                related = None
        alertable = liveness.alert and critical and related is None
        outcome = apply_policy(conn, incident_key_peak, window.start, window.end, alertable=alertable,
                               cooldown=cooldown, worse_factor=worse, quiet=quiet)
        p.incident_id = incident_key_peak.incident_id
        if p.kind == "cascade" and p.incident_id:
            remember_members(conn, p.incident_id, p.members)
        if related is not None:
            extend_incident(conn, related[0], window.end)
            p.incident_id = related[0]
            p.reasons.append(f"part of incident {related[0]}, already alerted")
            continue
        if critical and liveness.summarise:
            result.missed.append(missed_entry(p, window, liveness.late_minutes))
            p.reasons.append(f"judged {liveness.late_minutes} min late: told in the late summary")
        if outcome is None:
            continue
        number, since = outcome
        p.alerted = True
        pods = [e["value"] for e in p.explanation if e["field"] == "pod"]
        fs = first_seen.get(p.problem_id) or data.first_ts.get(p.problem_id)
        result.alerts.append(Alert(
            incident_id=p.incident_id, alert_number=number, problem_id=p.problem_id,
            template=templates.get(p.problem_id, ""), kind=p.kind, severity=p.severity, count=p.count,
            baseline=p.baseline, ratio=p.ratio,
            apps=sorted({m["app"] for m in p.members}) if p.kind == "cascade" else [p.app], pods=pods,
            explanation=p.explanation, explanation_text=describe(p.explanation), first_seen=iso_z(fs) if fs else None,
            sample_message=data.samples.get(p.problem_id, "")[:2000], events_since_last_alert=since,
            window=window_label(window.start, window.end), reasons=p.reasons,
            members=p.members, late_minutes=liveness.late_minutes))
    for p in result.peaks:
        if p.kind != "cascade" and (p.problem_id, p.app) in members:
            p.incident_id = members[(p.problem_id, p.app)].incident_id


def _cascade_key(p: Peak) -> Peak:
    """A cascade's incident is keyed on a fixed pseudo problem/app (one per application for a group within one
    application), so consecutive windows extend it instead of opening new incidents."""
    apps = {m["app"] for m in p.members}
    problem, app = (f"group:{next(iter(apps))}", next(iter(apps))) if len(apps) == 1 else ("cascade", "*")
    proxy = Peak(peak_id=p.peak_id, problem_id=problem, app=app, kind="cascade", start=p.start, end=p.end,
                 count=p.count, baseline=p.baseline, ratio=p.ratio, severity=p.severity)
    return proxy


def _write_peaks(conn: psycopg.Connection, window: Window, peaks: list[Peak]) -> None:
    """Replace the window's peaks; an alert already sent stays recorded (a re-run cannot un-send it)."""
    sent = {r[0] for r in conn.execute("SELECT peak_id FROM peaks WHERE window_start = %s AND alerted", (window.start,))}
    for p in peaks:
        p.alerted = p.alerted or p.peak_id in sent
    conn.execute("DELETE FROM peaks WHERE window_start = %s", (window.start,))
    if not peaks:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO peaks (peak_id, window_start, problem_id, app, kind, start_ts, end_ts, count, baseline, ratio,"
            " severity, known, known_peak_id, alerted, incident_id, explanation, reasons)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            [(p.peak_id, window.start, p.problem_id, p.app, p.kind, p.start, p.end, p.count, p.baseline, p.ratio,
              p.severity, p.known, p.known_peak_id, p.alerted, p.incident_id, dumps(p.explanation).decode(),
              dumps(p.reasons).decode()) for p in peaks])
