"""Spec texts shared by the SLO tests."""

LATENCY_SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: fast-first-token}
spec:
  service: chat
  indicator:
    metadata: {name: ttft-and-tpot}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: causalsre
            spec:
              conditions:
                - {metric: ttft_s, op: lte, value: 0.5}
                - {metric: tpot_s, op: lte, value: 0.05}
        total: {metricSource: {type: causalsre}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: fast, target: 0.99}]
"""


def latency_slo(target="0.99", duration="30d", method="Occurrences", extra_objective="", conditions=None):
    text = LATENCY_SLO.replace("target: 0.99", f"target: {target}{extra_objective}")
    text = text.replace("duration: 30d", f"duration: {duration}").replace("Occurrences", method)
    if conditions is not None:
        text = text.replace(
            "                - {metric: ttft_s, op: lte, value: 0.5}\n                - {metric: tpot_s, op: lte, value: 0.05}\n",
            "".join(f"                - {c}\n" for c in conditions),
        )
    return text
