//! Picking a backend: the registry says which encoder elements exist; a
//! short trial encode says which can actually open (a GPU may be absent,
//! busy or out of sessions although its plugin is installed).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gst::prelude::*;

use super::backend::{self, Plan};
use crate::config::{Backend, Encoder};

/// How long a trial encode may take before the backend counts as broken.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The backend an encoder instance runs on, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub plan: Plan,
    /// e.g. "auto: nvenc not installed, va not installed, … → x264".
    pub why: String,
}

/// Whether `factory` exists here and passed a trial encode at `size`.
pub trait Prober {
    fn exists(&self, factory: &str) -> bool;
    fn opens(&self, plan: &Plan, size: (u32, u32), fps: (u32, u32)) -> Result<(), String>;
    /// Why `backend` is not to be tried at all here, if it is not.
    fn set_aside(&self, _backend: Backend) -> Option<String> {
        None
    }
}

/// The environment variable that keeps nonstopd off hardware encoders: a
/// box whose GPU is reserved for something else, or a test suite whose
/// expected output must not depend on the machine's hardware.
pub const SOFTWARE_ONLY: &str = "NONSTOP_SOFTWARE_ONLY";

fn hardware(b: Backend) -> bool {
    matches!(
        b,
        Backend::Nvenc | Backend::Va | Backend::Vaapi | Backend::Qsv
    )
}

/// The real registry and real trial encodes, cached per element and size.
pub struct Registry;

/// Trial results per (element, width, height).
type TrialCache = Mutex<HashMap<(String, u32, u32), Result<(), String>>>;

fn cache() -> &'static TrialCache {
    static CACHE: OnceLock<TrialCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl Prober for Registry {
    fn exists(&self, factory: &str) -> bool {
        gst::ElementFactory::find(factory).is_some()
    }

    fn set_aside(&self, backend: Backend) -> Option<String> {
        let on = std::env::var(SOFTWARE_ONLY).is_ok_and(|v| v == "1");
        (on && hardware(backend)).then(|| format!("set aside by {SOFTWARE_ONLY}=1"))
    }

    fn opens(&self, plan: &Plan, size: (u32, u32), fps: (u32, u32)) -> Result<(), String> {
        let key = (plan.factory.to_owned(), size.0, size.1);
        if let Some(r) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return r.clone();
        }
        let r = trial(plan, size, fps);
        cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, r.clone());
        r
    }
}

/// Encodes three frames through the planned elements.
fn trial(plan: &Plan, size: (u32, u32), fps: (u32, u32)) -> Result<(), String> {
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("videotestsrc")
        .property("num-buffers", 3i32)
        .build()
        .map_err(|e| e.to_string())?;
    let raw = super::raw_caps(size, fps);
    let mut chain = vec![src, capsfilter(&raw)?];
    chain.extend(super::encoder_elements(plan).map_err(|e| format!("{e:#}"))?);
    let sink = gst::ElementFactory::make("fakesink")
        .build()
        .map_err(|e| e.to_string())?;
    // An encoder that reaches the end without a frame did not work.
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    if let Some(pad) = sink.static_pad("sink") {
        let frames = frames.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    chain.push(sink);
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|_| "the elements do not link".to_owned())?;
    let result = match pipeline.set_state(gst::State::Playing) {
        Err(_) => Err("it does not start".to_owned()),
        Ok(_) => {
            let bus = pipeline.bus().expect("a pipeline has a bus");
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_nseconds(TRIAL_TIMEOUT.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_))
                    if frames.load(std::sync::atomic::Ordering::Relaxed) > 0 =>
                {
                    Ok(())
                }
                Some(gst::MessageView::Eos(_)) => Err("it produced no frame".to_owned()),
                Some(gst::MessageView::Error(e)) => Err(e.error().to_string()),
                _ => Err(format!("no output within {}s", TRIAL_TIMEOUT.as_secs())),
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn capsfilter(caps: &gst::Caps) -> Result<gst::Element, String> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .map_err(|e| e.to_string())
}

/// Tries `backend`'s elements in order; the first that exists and opens.
fn try_backend(
    p: &dyn Prober,
    backend: Backend,
    e: &Encoder,
    size: (u32, u32),
    fps: (u32, u32),
) -> Result<Plan, String> {
    if let Some(why) = p.set_aside(backend) {
        return Err(why);
    }
    let factories = backend::factories(backend, e.codec);
    if factories.is_empty() {
        return Err(format!(
            "{} cannot encode {}",
            backend.name(),
            e.codec.name()
        ));
    }
    let mut reasons = Vec::new();
    for f in factories {
        if !p.exists(f) {
            continue;
        }
        let plan = backend::plan(backend, f, e, fps);
        match p.opens(&plan, size, fps) {
            Ok(()) => return Ok(plan),
            Err(why) => reasons.push(format!("{f} does not open: {why}")),
        }
    }
    if reasons.is_empty() {
        Err(format!(
            "not installed (no {}; needs {})",
            factories.join(" / "),
            backend::package(backend)
        ))
    } else {
        Err(reasons.join("; "))
    }
}

/// "nvenc, va (not installed), qsv (no device)": backends with the same
/// reason listed together, in order.
fn group(skipped: &[(&str, String)]) -> String {
    let mut out: Vec<(Vec<&str>, &str)> = Vec::new();
    for (b, r) in skipped {
        match out.last_mut() {
            Some((names, reason)) if *reason == r.as_str() => names.push(b),
            _ => out.push((vec![b], r)),
        }
    }
    out.iter()
        .map(|(names, reason)| format!("{} ({reason})", names.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the backend for `wanted` (the encoder's `backend` or
/// `backup_backend`): `auto` takes the first of nvenc, va, vaapi, qsv and
/// software that opens; an explicit one must open, unless `fallback`.
pub fn choose(
    p: &dyn Prober,
    wanted: Backend,
    fallback: bool,
    e: &Encoder,
    size: (u32, u32),
    fps: (u32, u32),
) -> Result<Choice, String> {
    let auto = |prefix: &str| -> Result<Choice, String> {
        // (backend, reason); "not installed" kept short: the install
        // hints are for an explicit choice.
        let mut skipped: Vec<(&str, String)> = Vec::new();
        for b in backend::auto_order(e.codec) {
            match try_backend(p, b, e, size, fps) {
                Ok(plan) => {
                    let why = if skipped.is_empty() {
                        format!("{prefix}{}, the first that opens", b.name())
                    } else {
                        format!("{prefix}{}; skipped {}", b.name(), group(&skipped))
                    };
                    return Ok(Choice { plan, why });
                }
                Err(r) => {
                    let short = if r.starts_with("not installed") {
                        "not installed".to_owned()
                    } else {
                        r
                    };
                    skipped.push((b.name(), short));
                }
            }
        }
        Err(format!(
            "no {} encoder opens: {}",
            e.codec.name(),
            group(&skipped)
        ))
    };
    if wanted == Backend::Auto {
        return auto("auto: ");
    }
    match try_backend(p, wanted, e, size, fps) {
        Ok(plan) => Ok(Choice {
            plan,
            why: format!("{} as configured", wanted.name()),
        }),
        Err(r) if fallback => auto(&format!(
            "fell back from {} because it is {r}; auto: ",
            wanted.name()
        )),
        Err(r) if r.starts_with("set aside") => Err(format!(
            "backend {} is {r}; unset {SOFTWARE_ONLY}, choose another backend, or set fallback = true",
            wanted.name()
        )),
        Err(r) => Err(format!(
            "backend {} is {r}; install it, choose another backend, or set fallback = true",
            wanted.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Codec;

    /// A machine with exactly these elements, of which `broken` fail.
    struct Fake {
        present: Vec<&'static str>,
        broken: Vec<&'static str>,
    }

    impl Prober for Fake {
        fn exists(&self, f: &str) -> bool {
            self.present.contains(&f)
        }
        fn opens(&self, plan: &Plan, _: (u32, u32), _: (u32, u32)) -> Result<(), String> {
            if self.broken.contains(&plan.factory) {
                Err("no CUDA device".into())
            } else {
                Ok(())
            }
        }
    }

    const SIZE: (u32, u32) = (1280, 720);
    const FPS: (u32, u32) = (25, 1);

    fn enc() -> Encoder {
        Encoder::default()
    }

    #[test]
    fn auto_with_only_software_picks_x264() {
        let m = Fake {
            present: vec!["x264enc"],
            broken: vec![],
        };
        let c = choose(&m, Backend::Auto, false, &enc(), SIZE, FPS).unwrap();
        assert_eq!(c.plan.factory, "x264enc");
        assert_eq!(
            c.why,
            "auto: x264; skipped nvenc, va, vaapi, qsv (not installed)"
        );
    }

    #[test]
    fn software_only_sets_hardware_aside_even_where_it_works() {
        struct SoftwareOnly(Fake);
        impl Prober for SoftwareOnly {
            fn exists(&self, f: &str) -> bool {
                self.0.exists(f)
            }
            fn opens(&self, plan: &Plan, s: (u32, u32), f: (u32, u32)) -> Result<(), String> {
                self.0.opens(plan, s, f)
            }
            fn set_aside(&self, b: Backend) -> Option<String> {
                hardware(b).then(|| format!("set aside by {SOFTWARE_ONLY}=1"))
            }
        }
        let m = SoftwareOnly(Fake {
            present: vec!["nvh264enc", "vah264enc", "x264enc"],
            broken: vec![],
        });
        let c = choose(&m, Backend::Auto, false, &enc(), SIZE, FPS).unwrap();
        assert_eq!(c.plan.factory, "x264enc");
        assert_eq!(
            c.why,
            "auto: x264; skipped nvenc, va, vaapi, qsv (set aside by NONSTOP_SOFTWARE_ONLY=1)"
        );
        let e = choose(&m, Backend::Nvenc, false, &enc(), SIZE, FPS).unwrap_err();
        assert_eq!(
            e,
            "backend nvenc is set aside by NONSTOP_SOFTWARE_ONLY=1; unset NONSTOP_SOFTWARE_ONLY, \
             choose another backend, or set fallback = true"
        );
    }

    #[test]
    fn an_explicit_backend_that_is_missing_says_what_to_install() {
        let m = Fake {
            present: vec!["x264enc"],
            broken: vec![],
        };
        let e = choose(&m, Backend::Nvenc, false, &enc(), SIZE, FPS).unwrap_err();
        assert_eq!(
            e,
            "backend nvenc is not installed (no nvautogpuh264enc / nvcudah264enc / nvh264enc; \
             needs gstreamer1.0-plugins-bad and the NVIDIA driver (libnvidia-encode)); \
             install it, choose another backend, or set fallback = true"
        );
    }

    #[test]
    fn auto_prefers_hardware_that_opens_and_skips_what_does_not() {
        let m = Fake {
            present: vec!["nvh264enc", "vah264enc", "x264enc"],
            broken: vec!["nvh264enc"],
        };
        let c = choose(&m, Backend::Auto, false, &enc(), SIZE, FPS).unwrap();
        assert_eq!(c.plan.factory, "vah264enc");
        assert!(
            c.why.contains("nvh264enc does not open: no CUDA device"),
            "{}",
            c.why
        );
    }

    #[test]
    fn an_explicit_missing_backend_fails_clearly_or_falls_back() {
        let m = Fake {
            present: vec!["x264enc"],
            broken: vec![],
        };
        let err = choose(&m, Backend::Nvenc, false, &enc(), SIZE, FPS).unwrap_err();
        assert!(err.starts_with("backend nvenc is not installed"), "{err}");
        assert!(err.contains("set fallback = true"), "{err}");
        let c = choose(&m, Backend::Nvenc, true, &enc(), SIZE, FPS).unwrap();
        assert_eq!(c.plan.factory, "x264enc");
        assert!(c.why.starts_with("fell back from nvenc"), "{}", c.why);
    }

    #[test]
    fn h265_auto_ends_with_x265() {
        let m = Fake {
            present: vec!["x264enc", "x265enc"],
            broken: vec![],
        };
        let e = Encoder {
            codec: Codec::H265,
            ..enc()
        };
        assert_eq!(
            choose(&m, Backend::Auto, false, &e, SIZE, FPS)
                .unwrap()
                .plan
                .factory,
            "x265enc"
        );
    }

    #[test]
    fn the_real_registry_opens_x264_here() {
        gst::init().unwrap();
        let c = choose(&Registry, Backend::Auto, false, &enc(), (320, 240), FPS).unwrap();
        // This machine has no GPU: software is what opens.
        assert_eq!(c.plan.factory, "x264enc", "{}", c.why);
    }
}
