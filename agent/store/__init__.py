"""Where samples live between the sources that feed them and the analyses that read them."""

from agent.store.metric_store import (
    LabelSet,
    LabelsLike,
    MetricStore,
    SeriesKey,
    label_set,
    store_from_params,
)

__all__ = ["LabelSet", "LabelsLike", "MetricStore", "SeriesKey", "label_set", "store_from_params"]
