//! The measured pipeline: two live `videotestsrc` into the switch under
//! test and a synchronised `fakesink`; in failover runs the primary has a
//! `valve`, every source buffer is tagged and every output buffer recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use super::common::Result;
use super::{CpuConfig, Switch, BACKUP_TAG, CAPS, RETURN_AFTER_NS, TIMEOUT_NS};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Failover,
    Cpu(CpuConfig),
}

/// One output buffer seen on the switch's src pad.
#[derive(Clone, Copy, Debug)]
pub(super) struct OutFrame {
    /// Pipeline running time when the buffer left the switch.
    pub(super) arrival: u64,
    pub(super) pts: Option<u64>,
    pub(super) offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    Primary(u64),
    Backup(u64),
    /// Made by the switch itself (offset NONE).
    Black,
}

impl OutFrame {
    pub(super) fn tag(&self) -> Tag {
        if self.offset == u64::MAX {
            Tag::Black
        } else if self.offset >= BACKUP_TAG {
            Tag::Backup(self.offset - BACKUP_TAG)
        } else {
            Tag::Primary(self.offset)
        }
    }
}

pub(super) struct Bench {
    kind: Switch,
    pipeline: gst::Pipeline,
    pub(super) valve: Option<gst::Element>,
    /// The sink whose `stats` count rendered frames.
    sink: gst::Element,
    pub(super) frames: Arc<Mutex<Vec<OutFrame>>>,
    /// Last tag number given to a primary buffer.
    pub(super) primary_counter: Arc<AtomicU64>,
    pub(super) switch_messages: Vec<String>,
    verbose: bool,
}

fn make(factory: &str, name: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| format!("cannot create {factory}: {e} (is GST_PLUGIN_PATH set?)"))
}

/// Sets a property from a string if the object has it; `required` ones error out.
fn set_prop(obj: &impl IsA<glib::Object>, name: &str, value: &str, required: bool) -> Result<()> {
    if obj.find_property(name).is_some() {
        obj.set_property_from_str(name, value);
        Ok(())
    } else if required {
        Err(format!(
            "{} has no property {name:?}",
            obj.as_ref().type_().name()
        ))
    } else {
        eprintln!(
            "switch_bench: note: {} has no property {name:?}; left at default",
            obj.as_ref().type_().name()
        );
        Ok(())
    }
}

/// `videotestsrc is-live=true ! capsfilter` (+ `valve`), returns the last element.
fn source_chain(
    pipeline: &gst::Pipeline,
    name: &str,
    pattern: &str,
    caps: &str,
    with_valve: bool,
) -> Result<(gst::Element, gst::Element, Option<gst::Element>)> {
    let src = make("videotestsrc", &format!("{name}_src"))?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", pattern);
    let caps: gst::Caps = caps.parse().map_err(|e| format!("caps: {e}"))?;
    let filter = make("capsfilter", &format!("{name}_caps"))?;
    filter.set_property("caps", &caps);
    pipeline
        .add_many([&src, &filter])
        .map_err(|e| e.to_string())?;
    src.link(&filter).map_err(|e| e.to_string())?;
    if with_valve {
        let valve = make("valve", &format!("{name}_valve"))?;
        pipeline.add(&valve).map_err(|e| e.to_string())?;
        filter.link(&valve).map_err(|e| e.to_string())?;
        Ok((src, valve.clone(), Some(valve)))
    } else {
        Ok((src, filter, None))
    }
}

fn fakesink(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element> {
    let sink = make("fakesink", name)?;
    sink.set_property("sync", true);
    sink.set_property("qos", false);
    pipeline.add(&sink).map_err(|e| e.to_string())?;
    Ok(sink)
}

/// Tags every buffer leaving `src` with `base + n` in its OFFSET field.
fn tag_source(src: &gst::Element, base: u64, counter: Arc<AtomicU64>) {
    let pad = src.static_pad("src").expect("videotestsrc has a src pad");
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer_mut() {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            buffer.make_mut().set_offset(base + n);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Records every buffer (and buffer-list member) passing `pad`.
fn record_output(pad: &gst::Pad, pipeline: &gst::Pipeline, frames: Arc<Mutex<Vec<OutFrame>>>) {
    let weak = pipeline.downgrade();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let Some(pipeline) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            let arrival = pipeline
                .current_running_time()
                .map(|t| t.nseconds())
                .unwrap_or(0);
            let mut frames = frames.lock().unwrap();
            let mut push = |b: &gst::BufferRef| {
                frames.push(OutFrame {
                    arrival,
                    pts: b.pts().map(|t| t.nseconds()),
                    offset: b.offset(),
                })
            };
            if let Some(b) = info.buffer() {
                push(b);
            } else if let Some(list) = info.buffer_list() {
                list.iter().for_each(&mut push);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

impl Bench {
    pub(super) fn build(kind: Switch, mode: Mode, verbose: bool) -> Result<Bench> {
        let pipeline = gst::Pipeline::with_name("bench");
        let failover = mode == Mode::Failover;
        // Failover runs tell the inputs apart; CPU runs use identical sources.
        let (p_pattern, b_pattern, caps) = match mode {
            Mode::Failover => ("smpte", "ball", CAPS),
            Mode::Cpu(c) => (c.pattern(), c.pattern(), c.caps()),
        };
        let (p_src, p_out, valve) = source_chain(&pipeline, "primary", p_pattern, caps, failover)?;
        let (b_src, b_out, _) = source_chain(&pipeline, "backup", b_pattern, caps, false)?;
        let primary_counter = Arc::new(AtomicU64::new(0));
        if failover {
            tag_source(&p_src, 0, primary_counter.clone());
            tag_source(&b_src, BACKUP_TAG, Arc::new(AtomicU64::new(0)));
        }

        let sink = fakesink(&pipeline, "out")?;
        let sw = make(kind.arg(), "switch")?;
        pipeline.add(&sw).map_err(|e| e.to_string())?;
        let mut sinkpads = Vec::new();
        for (i, upstream) in [&p_out, &b_out].into_iter().enumerate() {
            let pad = sw
                .request_pad_simple("sink_%u")
                .ok_or_else(|| format!("{}: no sink_%u request pad", kind.arg()))?;
            if kind != Switch::InputSelector {
                set_prop(&pad, "priority", &i.to_string(), kind == Switch::Fallback)?;
            }
            upstream
                .static_pad("src")
                .expect("src pad")
                .link(&pad)
                .map_err(|e| format!("linking {}: {e:?}", pad.name()))?;
            sinkpads.push(pad);
        }
        match kind {
            Switch::InputSelector => sw.set_property("active-pad", &sinkpads[0]),
            Switch::Nonstop => {
                set_prop(&sw, "timeout", &TIMEOUT_NS.to_string(), true)?;
                if failover {
                    set_prop(&sw, "return-after", &RETURN_AFTER_NS.to_string(), true)?;
                    // Every cycle measures one outage: no flap damping of
                    // the primary that fails every 3 s by design.
                    set_prop(&sw, "max-return-after", &RETURN_AFTER_NS.to_string(), true)?;
                }
            }
            Switch::Fallback => set_prop(&sw, "timeout", &TIMEOUT_NS.to_string(), true)?,
        }
        if verbose {
            for p in ["timeout", "return-after", "latency"] {
                if sw.find_property(p).is_some() {
                    let v = sw.property_value(p);
                    eprintln!("switch_bench: {} {p} = {v:?}", kind.arg());
                }
            }
        }
        sw.link(&sink).map_err(|e| e.to_string())?;
        let out_pad = sw.static_pad("src").expect("switch has a src pad");

        let frames = Arc::new(Mutex::new(Vec::with_capacity(8192)));
        if failover {
            record_output(&out_pad, &pipeline, frames.clone());
        }
        Ok(Bench {
            kind,
            pipeline,
            valve,
            sink,
            frames,
            primary_counter,
            switch_messages: Vec::new(),
            verbose,
        })
    }

    pub(super) fn play(&self) -> Result<()> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| format!("{}: pipeline refused to go to PLAYING", self.kind.arg()))?;
        Ok(())
    }

    pub(super) fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    pub(super) fn now(&self) -> u64 {
        self.pipeline
            .current_running_time()
            .map(|t| t.nseconds())
            .unwrap_or(0)
    }

    pub(super) fn rendered(&self) -> u64 {
        self.sink
            .property::<gst::Structure>("stats")
            .get::<u64>("rendered")
            .unwrap_or(0)
    }

    /// Handles bus messages for `d` of wall-clock time; errors end the run.
    pub(super) fn pump(&mut self, d: Duration) -> Result<()> {
        let deadline = Instant::now() + d;
        let bus = self.pipeline.bus().expect("pipeline has a bus");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
            else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(e) => {
                    return Err(format!(
                        "{}: error from {}: {} ({:?})",
                        self.kind.arg(),
                        e.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error(),
                        e.debug()
                    ));
                }
                gst::MessageView::Warning(w) if self.verbose => {
                    eprintln!("switch_bench: warning: {} ({:?})", w.error(), w.debug());
                }
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure().filter(|s| s.name() == "nonstop-switch") {
                        let line = format!("at {} ms: {}", self.now() / 1_000_000, s);
                        if self.verbose {
                            eprintln!("switch_bench: {line}");
                        }
                        self.switch_messages.push(line);
                    }
                }
                _ => {}
            }
        }
    }

    /// Pumps until `cond` holds on the recorded output, or `limit` passes.
    pub(super) fn wait_for(
        &mut self,
        limit: Duration,
        cond: impl Fn(&[OutFrame]) -> bool,
    ) -> Result<bool> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond(&self.frames.lock().unwrap()) {
                return Ok(true);
            }
            self.pump(Duration::from_millis(20))?;
        }
        Ok(false)
    }
}
