//! What `nonstopd check` prints about a valid config: each channel as it
//! would be built, with the encoder each instance would run on.

use nonstop_supervisor::config::{fmt_duration, Captions, Config};
use nonstop_supervisor::encode::backend::captions_written;
use nonstop_supervisor::encode::probe::Choice;
use nonstop_supervisor::uri;

/// What `check` prints: the channels as they would be built.
pub(crate) fn describe(c: &Config, choices: &[Vec<Vec<Choice>>]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if let Some(f) = &c.fleet {
        let _ = writeln!(
            s,
            "fleet: node {} (capacity {}), {} etcd endpoint(s), keys under {}, lease {}, {}",
            f.node_name(),
            f.capacity,
            f.endpoints.len(),
            f.key_prefix(),
            fmt_duration(f.ttl),
            f.peer.as_ref().map_or(
                "no peer address: an etcd outage fences this box's leaders".to_owned(),
                |p| { format!("peers ask it at {} (the failsafe)", p.get_ref()) }
            )
        );
    }
    for (n, ch) in c.channels.iter().enumerate() {
        let choices: &[Vec<Choice>] = choices.get(n).map_or(&[], |v| v.as_slice());
        let v = ch.video;
        let _ = writeln!(
            s,
            "channel {}: video {}x{} @ {}/{} fps, audio {}",
            ch.id.get_ref(),
            v.width,
            v.height,
            v.framerate.0,
            v.framerate.1,
            tracks(&ch.audio)
        );
        if c.fleet.is_some() {
            let nodes: Vec<&str> = ch
                .fleet
                .nodes
                .iter()
                .map(|n| n.get_ref().as_str())
                .collect();
            let _ = writeln!(
                s,
                "  fleet: {}, {} replica(s), on {}{}",
                ch.fleet.mode.name(),
                ch.fleet.replicas,
                if nodes.is_empty() {
                    "any node".to_owned()
                } else {
                    nodes.join(", ")
                },
                ch.fleet
                    .preferred
                    .as_ref()
                    .map_or(String::new(), |p| format!(", preferring {}", p.get_ref()))
            );
        }
        let fail_on: Vec<&str> = ch.watchdog.fail_on.iter().map(|a| a.name()).collect();
        let _ = writeln!(
            s,
            "  switching: timeout {}, return after {}, fail over on {}; at start, wait up to {} for the best input",
            fmt_duration(ch.timeout),
            fmt_duration(ch.return_after),
            fail_on.join(", "),
            fmt_duration(ch.startup_grace)
        );
        let _ = writeln!(
            s,
            "  returns: clean for return_after with no gap over {}; a failover within {} \
             of the last doubles it, up to {}",
            fmt_duration(ch.clean_gap),
            fmt_duration(ch.flap_window),
            fmt_duration(ch.max_return_after)
        );
        if !ch.auto_return {
            let _ = writeln!(
                s,
                "  non-revertive (auto_return = false): after a failover it stays on the input on air until that fails or an operator switches"
            );
        }
        if ch.loss_repeat != std::time::Duration::from_secs(1) {
            let _ = writeln!(
                s,
                "  with no healthy input: the last frame for {}, then black",
                fmt_duration(ch.loss_repeat)
            );
        }
        let w = &ch.watchdog;
        let d = nonstop_supervisor::config::Watchdog::default();
        if (
            w.freeze_tolerance,
            w.black_threshold,
            w.black_ratio,
            w.silence_threshold,
        ) != (
            d.freeze_tolerance,
            d.black_threshold,
            d.black_ratio,
            d.silence_threshold,
        ) {
            let _ = writeln!(
                s,
                "  content checks: frozen under {} luma levels of change, black at {}% of pixels at or under {}% luma, silent under {} dBFS",
                w.freeze_tolerance,
                w.black_ratio * 100.0,
                w.black_threshold * 100.0,
                w.silence_threshold
            );
        }
        let loud: Vec<String> = [
            (
                "loud",
                w.loud_timeout,
                format!("over {} LUFS", w.loud_threshold),
            ),
            (
                "quiet",
                w.quiet_timeout,
                format!("under {} LUFS", w.quiet_threshold),
            ),
            (
                "true-peak",
                w.true_peak_timeout,
                format!("over {} dBTP", w.true_peak_limit),
            ),
            (
                "jump",
                w.jump_timeout,
                format!("{} LU within 3s", w.jump_threshold),
            ),
        ]
        .into_iter()
        .filter(|(_, t, _)| !t.is_zero())
        .map(|(k, t, what)| format!("{k} ({what}, for {})", fmt_duration(t)))
        .collect();
        if !loud.is_empty() {
            let _ = writeln!(s, "  loudness alarms (EBU R128): {}", loud.join(", "));
        }
        let _ = writeln!(
            s,
            "  SCTE-35: operator cues{} on every TS output",
            if ch.pass_scte35 {
                ", and the input on air's"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "  captions (CEA-608/708): {}",
            match ch.captions {
                Captions::Carry => "carried from the input on air".to_owned(),
                Captions::Required => format!(
                    "required: an input without them for {} raises no-captions",
                    fmt_duration(w.no_captions_timeout)
                ),
                Captions::Drop => "dropped".to_owned(),
            }
        );
        let srt = &ch.srt;
        if srt.max_loss > 0.0 || !srt.max_rtt.is_zero() {
            let mut bounds = Vec::new();
            if srt.max_loss > 0.0 {
                bounds.push(format!("loss over {} %", srt.max_loss));
            }
            if !srt.max_rtt.is_zero() {
                bounds.push(format!("round trip over {}", fmt_duration(srt.max_rtt)));
            }
            let _ = writeln!(s, "  SRT links alarmed: {} (for 5s)", bounds.join(" or "));
        }
        if !w.loudness {
            let _ = writeln!(s, "  loudness not metered (watchdog.loudness = false)");
        }
        let _ = writeln!(
            s,
            "  restarts: backoff {} doubling to {}",
            fmt_duration(ch.backoff.initial),
            fmt_duration(ch.backoff.max)
        );
        let _ = writeln!(s, "  inputs, in priority order:");
        for (i, input) in ch.inputs.iter().enumerate() {
            let own = input.fail_on.as_ref().map_or(String::new(), |l| {
                let names: Vec<&str> = l.iter().map(|a| a.name()).collect();
                format!("  (fails over on {})", names.join(", "))
            });
            let _ = writeln!(
                s,
                "    {i}. {}  {}{own}",
                input.id.get_ref(),
                uri::redact(input.uri.get_ref())
            );
        }
        for t in &ch.audio {
            let of = if ch.audio.len() > 1 {
                format!(" ({})", t.id)
            } else {
                String::new()
            };
            let _ = writeln!(s, "  audio encoder{of}: AAC {} kbit/s", t.format.bitrate);
        }
        for (e, enc) in ch.encoders.iter().enumerate() {
            let (w, h) = enc.size(&ch.video);
            let _ =
                writeln!(
                s,
                "  encoder {}: {} {}x{} {} kbit/s {}, keyframe every {}, preset {}, profile {}{}{}",
                enc.id(),
                enc.codec.name(),
                w,
                h,
                enc.video_bitrate,
                match enc.rate_control {
                    nonstop_supervisor::config::RateControl::Cbr => "cbr",
                    nonstop_supervisor::config::RateControl::Vbr => "vbr",
                },
                fmt_duration(enc.keyframe_interval),
                enc.preset.name(),
                enc.profile().name(),
                if enc.bframes > 0 { format!(", {} B-frames", enc.bframes) } else { String::new() },
                if enc.low_latency { ", low latency" } else { "" }
            );
            if let Some(list) = choices.get(e) {
                for (i, c) in list.iter().enumerate() {
                    let cc = match (ch.captions, captions_written(c.plan.factory)) {
                        (Captions::Drop, _) => "",
                        (_, true) => "; captions as SEI",
                        (_, false) => {
                            "; cannot write captions (GStreamer 1.22): none on its outputs"
                        }
                    };
                    let _ = writeln!(
                        s,
                        "    {}: {} ({}{cc})",
                        if i == 0 { "primary" } else { "backup" },
                        c.plan.factory,
                        c.why
                    );
                }
            }
            if enc.redundancy != nonstop_supervisor::config::Redundancy::None {
                let _ = writeln!(
                    s,
                    "    redundancy {}, failed when silent for {}, hold-off {}",
                    match enc.redundancy {
                        nonstop_supervisor::config::Redundancy::ActiveActive => "active-active",
                        _ => "active-passive",
                    },
                    fmt_duration(enc.stall_timeout),
                    fmt_duration(enc.hold_off)
                );
            }
        }
        if ch.outputs.is_empty() {
            let _ = writeln!(s, "  outputs: none");
        } else {
            let _ = writeln!(s, "  outputs:");
            for o in &ch.outputs {
                let carries: Vec<&str> = match &o.encoders {
                    Some(list) => list.iter().map(|n| n.get_ref().as_str()).collect(),
                    None if o.uri.get_ref().starts_with("hls:") => {
                        ch.encoders.iter().map(|e| e.id()).collect()
                    }
                    None => vec![ch.encoders[0].id()],
                };
                let _ = writeln!(
                    s,
                    "    {}  {}  [{}]",
                    o.id.get_ref(),
                    uri::redact(o.uri.get_ref()),
                    carries.join(", ")
                );
                for b in &o.backup {
                    let _ = writeln!(
                        s,
                        "      {} {}",
                        match o.mode {
                            nonstop_supervisor::config::OutputMode::Both => "also",
                            nonstop_supervisor::config::OutputMode::Failover => "backup",
                        },
                        uri::redact(b.get_ref())
                    );
                }
            }
        }
    }
    s
}

/// `48000 Hz 2 ch`, or per track `eng [eng] 48000 Hz 2 ch; spa [spa] …`.
fn tracks(audio: &[nonstop_supervisor::config::AudioTrack]) -> String {
    let one = |t: &nonstop_supervisor::config::AudioTrack| {
        format!("{} Hz {} ch", t.format.rate, t.format.channels)
    };
    match audio {
        [t] if t.id == nonstop_supervisor::config::MAIN_TRACK => one(t),
        _ => audio
            .iter()
            .map(|t| match &t.language {
                Some(l) => format!("{} [{l}] {}", t.id, one(t)),
                None => format!("{} {}", t.id, one(t)),
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}
