//! Encode latency, observed by the encoder instances (sampled) and
//! exported by `metrics`: kept here, with what measures it.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EncoderLabels {
    pub channel: String,
    pub encoder: String,
    /// `primary` or `backup` (not `instance`: Prometheus has its own).
    pub role: String,
}

/// The histogram family, one per encoder instance.
pub fn encode_latency() -> &'static Family<EncoderLabels, Histogram> {
    static FAMILY: OnceLock<Family<EncoderLabels, Histogram>> = OnceLock::new();
    FAMILY.get_or_init(|| {
        Family::new_with_constructor(|| {
            // 1 ms … ~4 s.
            Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
                2.0, 4.0,
            ])
        })
    })
}
