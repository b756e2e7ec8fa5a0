"""A task result as plain text for a terminal: what an operator reads first."""

from __future__ import annotations

from typing import Any


def render_text(result: dict[str, Any]) -> str:
    """One screen: status, every judged metric, the ranked bottlenecks, the recommendations."""
    lines = [
        f"task {result.get('task_id')} ({result.get('task_type')}): {result.get('status')}"
        f" in {result.get('duration_ms', 0):.1f} ms"
    ]
    error = result.get("error")
    if error:
        lines.append(f"  error {error.get('code')}: {error.get('message')}")
    report = result.get("report") or {}
    performance: dict[str, Any] = report.get("performance", {})
    if performance:
        lines.append(f"\nmetrics over {report.get('window')}:")
        lines.append(
            f"  {'metric':<24} {'current':>10} {'target':>9} {'unit':<6} {'stat':<5} "
            f"{'miss':>6} {'trend':<9} {'n':>5}"
        )
        for name, perf in performance.items():
            mark = " " if perf["meeting_target"] else "!"
            lines.append(
                f"{mark} {name:<24} {perf['current']:>10.2f} {perf['target']:>9.2f} "
                f"{perf['unit']:<6} {perf.get('statistic', ''):<5} {perf['miss_ratio']:>5.2f}x "
                f"{perf['trend']:<9} {perf['samples']:>5}"
            )
    bottlenecks = report.get("bottlenecks", [])
    if bottlenecks:
        lines.append("\nbottlenecks (most urgent first):")
        for b in bottlenecks:
            lines.append(
                f"  [{b['severity']:<8}] urgency {b['optimization_urgency']:>3}  "
                f"{b['bottleneck_type']}: {b['evidence']}"
            )
    recommendations = report.get("recommendations", [])
    if recommendations:
        lines.append("\nrecommendations:")
        for r in recommendations:
            lines.append(
                f"  {r['recommendation_id']} {r['type']:<12} {r['approach']} → "
                f"{r['expected_improvement']}; effort {r['effort']}; risk {r['risk']}"
            )
    return "\n".join(lines)
