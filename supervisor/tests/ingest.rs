//! Input pipelines deliver the channel's exact format whatever the source:
//! a 4:3 file without audio comes out pillarboxed at the channel size with
//! synthetic silence; test patterns and slates at the channel format.

use std::sync::Arc;
use std::time::Duration;

use gst::prelude::*;
use gst_app::{AppSink, AppSrc};
use gst_video::prelude::*;
use nonstop_supervisor::config::{AudioFormat, AudioTrack, Captions, TrackSource, VideoFormat};
use nonstop_supervisor::ingest::{self, Bridge, InputStats};
use nonstop_supervisor::uri;

const VIDEO: VideoFormat = VideoFormat {
    width: 640,
    height: 360,
    framerate: (25, 1),
};
const AUDIO: AudioFormat = AudioFormat {
    rate: 48000,
    channels: 2,
    bitrate: 128,
};

/// The channel side of the bridge: appsrc → appsink for each stream.
struct Channel {
    pipeline: gst::Pipeline,
    bridge: Bridge,
    video: AppSink,
    /// The first audio track.
    audio: AppSink,
    /// The others.
    more: Vec<AppSink>,
}

fn channel() -> Channel {
    channel_with(1)
}

/// With `tracks` audio tracks.
fn channel_with(tracks: usize) -> Channel {
    let pipeline = gst::Pipeline::new();
    let mut pair = Vec::new();
    let mut caps = vec![ingest::video_caps(&VIDEO)];
    caps.extend((0..tracks).map(|_| ingest::audio_caps(&AUDIO)));
    for caps in caps {
        let src = AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(true)
            .build();
        let sink = AppSink::builder().sync(false).build();
        pipeline
            .add_many([src.upcast_ref::<gst::Element>(), sink.upcast_ref()])
            .unwrap();
        src.link(&sink).unwrap();
        pair.push((src, sink));
    }
    pipeline.set_state(gst::State::Playing).unwrap();
    let (vsrc, video) = pair.remove(0);
    let (asrcs, mut sinks): (Vec<AppSrc>, Vec<AppSink>) = pair.into_iter().unzip();
    let audio = sinks.remove(0);
    Channel {
        pipeline,
        bridge: Bridge {
            video: vsrc,
            audio: asrcs,
        },
        video,
        audio,
        more: sinks,
    }
}

fn main_track() -> Vec<AudioTrack> {
    vec![AudioTrack {
        id: "main".into(),
        language: None,
        format: AUDIO,
    }]
}

fn start(uri: &str, ch: &Channel) -> (gst::Pipeline, Arc<InputStats>) {
    start_with(uri, ch, Captions::Carry)
}

fn start_with(uri: &str, ch: &Channel, captions: Captions) -> (gst::Pipeline, Arc<InputStats>) {
    let kind = uri::input_kind(uri).unwrap();
    let stats = Arc::new(InputStats::default());
    let ingest = ingest::build(
        "t",
        &kind,
        &VIDEO,
        &main_track(),
        &Default::default(),
        &ch.bridge,
        &stats,
        nonstop_supervisor::ingest::Carry {
            captions,
            ..Default::default()
        },
    )
    .unwrap();
    ingest.pipeline.set_state(gst::State::Playing).unwrap();
    (ingest.pipeline, stats)
}

fn pull(sink: &AppSink) -> gst::Sample {
    sink.try_pull_sample(gst::ClockTime::from_seconds(10))
        .expect("no sample within 10 s")
}

/// Mean luma of a column band of an I420 frame.
fn luma(sample: &gst::Sample, x0: usize, x1: usize) -> f64 {
    let caps = sample.caps().unwrap();
    let info = gst_video::VideoInfo::from_caps(caps).unwrap();
    let buffer = sample.buffer().unwrap();
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
    let stride = frame.plane_stride()[0] as usize;
    let y = frame.plane_data(0).unwrap();
    let (mut sum, mut n) = (0u64, 0u64);
    for row in (0..info.height() as usize).step_by(8) {
        for x in x0..x1 {
            sum += y[row * stride + x] as u64;
            n += 1;
        }
    }
    sum as f64 / n as f64
}

fn caps_of(sample: &gst::Sample) -> (i32, i32) {
    let s = sample.caps().unwrap().structure(0).unwrap();
    (s.get("width").unwrap(), s.get("height").unwrap())
}

#[test]
fn a_4_3_file_without_audio_is_pillarboxed_and_gets_silence() {
    gst::init().unwrap();
    let dir = std::env::temp_dir().join(format!("nonstop-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("white43.mp4");
    let make = gst::parse::launch(&format!(
        "videotestsrc num-buffers=50 pattern=white ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc ! mp4mux ! filesink location={}",
        file.display()
    ))
    .unwrap();
    make.set_state(gst::State::Playing).unwrap();
    let bus = make.bus().unwrap();
    bus.timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos])
        .expect("writing the test file");
    make.set_state(gst::State::Null).unwrap();

    let ch = channel();
    let (input, stats) = start(&format!("file://{}", file.display()), &ch);
    let v = pull(&ch.video);
    assert_eq!(caps_of(&v), (640, 360));
    // 4:3 in 16:9 at 360 lines: 480 wide, 80-pixel black bars each side.
    let (left, middle, right) = (luma(&v, 0, 72), luma(&v, 100, 540), luma(&v, 568, 640));
    assert!(left < 20.0 && right < 20.0, "bars: {left} {right}");
    assert!(middle > 220.0, "picture: {middle}");
    let a = pull(&ch.audio);
    assert!(a.buffer().unwrap().size() > 0);
    assert!(stats.has_synthetic_audio(), "the file has no audio");
    assert!(stats.last_data() > 0, "the real video counts as data");
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 608 byte: 7 bits and odd parity.
fn parity(b: u8) -> u8 {
    let b = b & 0x7f;
    if b.count_ones().is_multiple_of(2) {
        b | 0x80
    } else {
        b
    }
}

/// 150 frames at 29.97 fps of H.264 whose SEI carries 608 text, a byte
/// pair per frame (x264enc writes the frames' caption meta), in MPEG-TS.
fn captioned_file(dir: &std::path::Path, text: &[u8]) -> std::path::PathBuf {
    let file = dir.join("captioned.ts");
    let make = gst::parse::launch(&format!(
        "videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=240,framerate=30000/1001 \
         ! identity name=cc ! x264enc speed-preset=ultrafast ! h264parse ! mpegtsmux ! filesink location={}",
        file.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let pairs: Vec<[u8; 2]> = text
        .chunks(2)
        .map(|p| [parity(p[0]), parity(*p.get(1).unwrap_or(&0))])
        .collect();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let cc = make.by_name("cc").unwrap();
    cc.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = info.data.as_mut() {
                let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = pairs.get(i).copied().unwrap_or([0x80, 0x80]);
                gst_video::VideoCaptionMeta::add(
                    buf.make_mut(),
                    gst_video::VideoCaptionType::Cea708Raw,
                    &[0xfc, p[0], p[1]],
                );
            }
            gst::PadProbeReturn::Ok
        });
    make.set_state(gst::State::Playing).unwrap();
    make.bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Eos])
        .expect("writing the test file");
    make.set_state(gst::State::Null).unwrap();
    file
}

/// The 608 field-1 letters (parity off, padding out) on the frames of
/// `sink` until it has had nothing for a second; and how many frames came.
fn caption_text(sink: &AppSink) -> (Vec<u8>, usize, usize) {
    let (mut text, mut frames, mut captioned) = (Vec::new(), 0, 0);
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(1)) {
        frames += 1;
        if let Some(m) = s.buffer().unwrap().meta::<gst_video::VideoCaptionMeta>() {
            captioned += 1;
            assert_eq!(m.caption_type(), gst_video::VideoCaptionType::Cea708Raw);
            for t in m.data().chunks_exact(3).filter(|t| t[0] == 0xfc) {
                text.extend([t[1] & 0x7f, t[2] & 0x7f].into_iter().filter(|&b| b != 0));
            }
        }
    }
    (text, frames, captioned)
}

#[test]
fn captions_cross_a_frame_rate_change_whole_or_are_dropped() {
    gst::init().unwrap();
    let dir = std::env::temp_dir().join(format!("nonstop-ingest-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text: Vec<u8> = b"EVERY LETTER ONCE, IN ORDER, FROM 29.97 FPS TO 25: ".repeat(5);
    let file = captioned_file(&dir, &text);
    let uri = format!("file://{}", file.display());

    // 29.97 → 25 fps: videorate drops a frame in six; the letters are not
    // dropped with them (nor repeated: they would come out twice).
    let ch = channel();
    let (input, _) = start(&uri, &ch);
    let (got, frames, captioned) = caption_text(&ch.video);
    assert!(frames >= 120, "{frames} frames of 5 s at 25 fps");
    assert_eq!(
        captioned, frames,
        "every frame carries captions (letters or padding)"
    );
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&text)
    );
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();

    // `captions = "drop"`: none.
    let ch = channel();
    let (input, _) = start_with(&uri, &ch, Captions::Drop);
    let (got, frames, captioned) = caption_text(&ch.video);
    assert!(
        frames >= 120 && captioned == 0 && got.is_empty(),
        "{frames} {captioned}"
    );
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_patterns_and_slates_come_at_the_channel_format() {
    gst::init().unwrap();
    for uri in [
        "test://smpte?label=CAM%201&tone=1000",
        "slate://colour/white?text=standby",
    ] {
        let ch = channel();
        let (input, stats) = start(uri, &ch);
        let v = pull(&ch.video);
        assert_eq!(caps_of(&v), (640, 360), "{uri}");
        assert!(pull(&ch.audio).buffer().unwrap().size() > 0, "{uri}");
        assert!(!stats.has_synthetic_audio(), "{uri}");
        if uri.starts_with("slate") {
            assert!(luma(&v, 0, 64) > 220.0, "white slate");
        }
        input.set_state(gst::State::Null).unwrap();
        ch.pipeline.set_state(gst::State::Null).unwrap();
    }
}

#[test]
fn a_stalling_test_source_stops_and_resumes_on_schedule() {
    gst::init().unwrap();
    let ch = channel();
    // Stalls for the last 600 ms of every 1.2 s on the monotonic clock.
    let (input, stats) = start("test://ball?stall=1200ms/600ms", &ch);
    let mut gaps = Vec::new();
    let mut last = std::time::Instant::now();
    let until = last + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        if ch
            .video
            .try_pull_sample(gst::ClockTime::from_mseconds(100))
            .is_some()
        {
            gaps.push(last.elapsed());
            last = std::time::Instant::now();
        }
    }
    let long = gaps
        .iter()
        .filter(|g| **g > Duration::from_millis(400))
        .count();
    assert!(long >= 2, "expected ≥ 2 stalls in 4 s, gaps {gaps:?}");
    assert!(gaps.len() > 30, "frames still flow between stalls");
    assert!(stats.last_data() > 0);
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn every_network_scheme_has_a_source_element() {
    gst::init().unwrap();
    for uri in [
        "srt://127.0.0.1:9000?mode=listener",
        "udp://239.1.1.1:5000",
        "rtmp://127.0.0.1/live/key",
        "rtsp://127.0.0.1/stream",
        "http://127.0.0.1/live.m3u8",
        "https://127.0.0.1/live.ts",
        "file:///srv/media/a.ts",
    ] {
        let Ok(uri::InputKind::Uri { uri: plain, .. }) = uri::input_kind(uri) else {
            panic!("{uri} is not a uridecodebin input");
        };
        gst::Element::make_from_uri(gst::URIType::Src, &plain, None)
            .unwrap_or_else(|e| panic!("no source element for {uri}: {e}"));
    }
}

/// A source in which the decoder finds neither video nor audio must not
/// look alive: the synthetic black and silence stand in for the missing
/// stream of a source that delivers the other one, never for a source
/// that delivers nothing. Random bytes beginning with `[` typefind as LRC
/// subtitles (tests/input_garbage.sh met one over SRT); such a source's
/// filler reached the switch within 300 ms of the start, and the switch
/// put it on air for 5 s, until the input was judged dead.
#[test]
fn a_live_source_with_neither_video_nor_audio_sends_nothing() {
    gst::init().unwrap();
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let ch = channel();
    let (input, stats) = start(&format!("udp://127.0.0.1:{port}"), &ch);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            // No line ends: the subtitle parser waits for one and never
            // pushes (a pushed subtitle would fail the input at once, its
            // pad being unlinked).
            let text = "[00:01.00]not a picture ".repeat(50);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.send_to(text.as_bytes(), ("127.0.0.1", port));
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let got = ch
        .video
        .try_pull_sample(gst::ClockTime::from_seconds(3))
        .or_else(|| ch.audio.try_pull_sample(gst::ClockTime::from_mseconds(10)));
    let synthetic = stats.has_synthetic_audio();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
    assert!(synthetic, "the decoder found no audio (nor video)");
    assert!(got.is_none(), "filler from a source without any media");
    assert_eq!(stats.last_data(), 0, "and no data");
}

/// An input with the channel's `tracks` and its `map`, playing into `ch`.
fn start_tracks(
    kind: &uri::InputKind,
    tracks: &[AudioTrack],
    map: &std::collections::BTreeMap<String, TrackSource>,
    ch: &Channel,
) -> gst::Pipeline {
    let stats = Arc::new(InputStats::default());
    let ingest = ingest::build(
        "t",
        kind,
        &VIDEO,
        tracks,
        map,
        &ch.bridge,
        &stats,
        Default::default(),
    )
    .unwrap();
    ingest.pipeline.set_state(gst::State::Playing).unwrap();
    ingest.pipeline
}

/// Zero crossings per second of a stereo S16 sample's left channel: the
/// frequency of a sine.
fn frequency(sample: &gst::Sample) -> f64 {
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let left: Vec<i16> = map
        .chunks_exact(4)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (left.len() as f64 / 48000.0)
}

/// Pulls until a sample of at least `n` ms of sound (the first after a
/// decoder's start can be short).
fn pull_audio(sink: &AppSink) -> gst::Sample {
    loop {
        let s = pull(sink);
        if s.buffer().unwrap().size() >= 48 * 4 * 20 {
            return s;
        }
    }
}

#[test]
fn audio_streams_go_to_the_tracks_of_their_language_and_a_missing_one_gets_silence() {
    gst::init().unwrap();
    if std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_err()
    {
        panic!("ffmpeg is missing (scripts/bootstrap installs it)");
    }
    let dir = std::env::temp_dir().join(format!("nonstop-tracks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("two.ts");
    // Spanish at 880 Hz first in the PMT, English at 440 Hz second.
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=320x180:r=25:d=20",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=f=880:d=20",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=20",
        ])
        .args([
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-c:a", "aac", "-ac", "2", "-ar", "48000"])
        .args([
            "-metadata:s:a:0",
            "language=spa",
            "-metadata:s:a:1",
            "language=eng",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let track = |id: &str, lang: &str| AudioTrack {
        id: id.into(),
        language: Some(lang.into()),
        format: AUDIO,
    };
    let tracks = [
        track("eng", "eng"),
        track("spa", "spa"),
        track("fre", "fre"),
    ];
    let ch = channel_with(3);
    let kind = uri::input_kind(&format!("file://{}", file.display())).unwrap();
    let input = start_tracks(&kind, &tracks, &Default::default(), &ch);
    let bus = input.bus().unwrap();
    // tsdemux posts its tables as element messages too.
    let msg = loop {
        let m = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Element],
            )
            .expect("no tracks message");
        if m.structure()
            .is_some_and(|s| s.name() == ingest::TRACKS_MESSAGE)
        {
            break m;
        }
    };
    let s = msg.structure().unwrap();
    assert_eq!(
        s.get::<String>("missing").unwrap(),
        "2",
        "French is missing"
    );
    assert_eq!(s.get::<u32>("streams").unwrap(), 2);
    let mapping = s.get::<String>("mapping").unwrap();
    assert_eq!(
        mapping,
        "eng ← stream 1 [eng], spa ← stream 0 [spa], fre: none (silence)"
    );
    let (eng, spa, fre) = (
        pull_audio(&ch.audio),
        pull_audio(&ch.more[0]),
        pull_audio(&ch.more[1]),
    );
    let (fe, fs) = (frequency(&eng), frequency(&spa));
    assert!((fe - 440.0).abs() < 20.0, "English reads {fe} Hz, want 440");
    assert!((fs - 880.0).abs() < 20.0, "Spanish reads {fs} Hz, want 880");
    let map = fre.buffer().unwrap().map_readable().unwrap();
    assert!(map.iter().all(|b| *b == 0), "French is silence");
    drop(map);
    input.set_state(gst::State::Null).unwrap();

    // The input says where its tracks are: by index, overriding language.
    let ch = channel_with(2);
    let map = [("eng".to_owned(), TrackSource::Index(0))]
        .into_iter()
        .collect();
    let input2 = start_tracks(&kind, &tracks[..2], &map, &ch);
    let (eng, spa) = (pull_audio(&ch.audio), pull_audio(&ch.more[0]));
    let (fe, fs) = (frequency(&eng), frequency(&spa));
    assert!(
        (fe - 880.0).abs() < 20.0,
        "the map's stream 0 reads {fe} Hz, want 880"
    );
    // Spanish's own stream is taken, and the one at its position (1) is
    // English: silence, not the wrong language.
    let silent = spa
        .buffer()
        .unwrap()
        .map_readable()
        .unwrap()
        .iter()
        .all(|b| *b == 0);
    assert!(silent, "Spanish reads {fs} Hz, want silence");
    input2.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slate_image_gives_every_track_silence_and_no_missing_alarm() {
    gst::init().unwrap();
    let dir = std::env::temp_dir().join(format!("nonstop-slate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("standby.png");
    let make = gst::parse::launch(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,width=320,height=180 ! pngenc ! filesink location={}",
        png.display()
    ))
    .unwrap();
    make.set_state(gst::State::Playing).unwrap();
    make.bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(10), &[gst::MessageType::Eos])
        .expect("writing the slate");
    make.set_state(gst::State::Null).unwrap();
    let tracks: Vec<AudioTrack> = ["eng", "spa"]
        .iter()
        .map(|l| AudioTrack {
            id: (*l).into(),
            language: Some((*l).into()),
            format: AUDIO,
        })
        .collect();
    let ch = channel_with(2);
    let kind = uri::input_kind(&format!("slate://{}", png.display())).unwrap();
    let input = start_tracks(&kind, &tracks, &Default::default(), &ch);
    let bus = input.bus().unwrap();
    pull(&ch.video);
    for sink in [&ch.audio, &ch.more[0]] {
        let a = pull(sink);
        let map = a.buffer().unwrap().map_readable().unwrap();
        assert!(
            map.iter().all(|b| *b == 0),
            "the slate's tracks are silence"
        );
    }
    // By now the decoder has exposed its pads: any tracks message is on
    // the bus.
    while let Some(m) = bus.pop_filtered(&[gst::MessageType::Element]) {
        let name = m.structure().map(|s| s.name().to_string());
        assert_ne!(
            name.as_deref(),
            Some(ingest::TRACKS_MESSAGE),
            "a slate reports no missing track"
        );
    }
    input.set_state(gst::State::Null).unwrap();
    ch.pipeline.set_state(gst::State::Null).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
