"""Detection: baselines, spikes, bursts, new and regressed problems, cascades, known peaks, alert policy."""

from tasks.detection.alert_policy import Alert
from tasks.detection.detector import DetectionResult, detect_window
from tasks.detection.rules import DetectionRules, load_detection_rules

__all__ = ["Alert", "DetectionResult", "DetectionRules", "detect_window", "load_detection_rules"]
