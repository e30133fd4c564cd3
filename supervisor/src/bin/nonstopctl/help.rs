//! What `nonstopctl --help` prints, and the usage after a usage error:
//! written for people, kept as they are (scripts read the exit codes).

pub const USAGE: &str = "\
usage: nonstopctl [--session | --system | --address ADDR] COMMAND [ARGS]
  status [CHANNEL] [--json]        the channels (or one): state, inputs, outputs, encoders
  switch CHANNEL INPUT             put INPUT on air (the channel goes to manual mode)
  mode CHANNEL auto|manual         let the switch choose again, or hold the input on air
  restart CHANNEL input|output ID  rebuild an input or output now
  start CHANNEL | stop CHANNEL     take a channel off air until started again
  drill CHANNEL KIND [TARGET] [--for DURATION] [--json]
                                   a failover drill; exit 0 only if it passed
  cue CHANNEL splice-out|splice-in [--duration D] [--preroll D | --at UTC]
                                   place an SCTE-35 cue; prints its event id
  watch [CHANNEL] [--json]         live events as lines, until SIGINT
  reload                           re-read nonstopd's config (all or nothing)
  fleet status [--json]            the fleet: members, each channel's role and leader
  fleet drain|undrain NODE         move a box's channels away, or let it take them again
  --help                           everything, with the exit codes";

pub const HELP: &str = "\
nonstopctl: control and observe nonstopd through its D-Bus API
(org.nonstop.Supervisor1; see docs/dbus.md).

usage: nonstopctl [--session | --system | --address ADDR] COMMAND [ARGS]

Commands:
  status [CHANNEL]        Every channel (or CHANNEL): state, mode, the input on
                          air, a table of inputs (state, alarms, last buffer,
                          restarts), outputs (state, bytes sent, restarts) and
                          encoders. --json: one JSON object with every property
                          (Version, StartedAt, Channels: [...]), or the channel's
                          object (Path, Id, State, Mode, ActiveInput, Switches,
                          Inputs, Outputs, Encoders) when CHANNEL is given.
  switch CHANNEL INPUT    Put INPUT on air; the channel goes to manual mode.
  mode CHANNEL auto|manual
                          auto: the switch chooses the input again.
  restart CHANNEL input|output ID
                          Rebuild an input or an output now (no backoff).
  start CHANNEL           Build and start a stopped channel.
  stop CHANNEL            Take the channel off air until `start`.
  drill CHANNEL KIND [TARGET] [--for DURATION]
                          Make a failure happen through the real code path for
                          DURATION (default 10s; e.g. 500ms, 10s, 1m), remove it,
                          wait for the recovery and print the report as
                          `key: value` lines (--json: one object). KIND:
                          input-stall, input-black, input-silence (TARGET: an
                          input), encoder-fail (TARGET: a rendition; none: the
                          first), output-fail (TARGET: an output).
  cue CHANNEL splice-out|splice-in [--duration D] [--preroll D | --at UTC]
                          Place an SCTE-35 splice_insert on every TS output of
                          CHANNEL (UDP, SRT, HLS, TS recordings): the splice
                          --preroll from now (default 4s) or --at a UTC time
                          (RFC 3339, e.g. 2026-12-07T20:00:00Z), on an IDR the
                          encoders put there. splice-out --duration D: a break
                          that returns by itself after D. Prints the cue's
                          splice_event_id (--json: {\"id\": N}).
  watch [CHANNEL]         First the state of each channel, then every change and
                          signal as it happens, one line each, prefixed with the
                          local time, until SIGINT or SIGTERM (exit 0):
                            TIME CHANNEL State=on-air        (also Mode=, ActiveInput=)
                            TIME CHANNEL switched FROM -> TO (REASON)
                            TIME CHANNEL alarm TARGET KIND raised|cleared
                            TIME CHANNEL output ID STATE
                            TIME CHANNEL role ROLE (leader LEADER, token N)
                            TIME CHANNEL added | removed
                            TIME nonstopd started | stopped
                          --json: one object per line with \"time\", \"event\"
                          (Property: the state at start, PropertiesChanged,
                          InputSwitched, Alarm, OutputStateChanged, RoleChanged,
                          ChannelAdded, ChannelRemoved, Daemon) and \"channel\"
                          and the event's fields. An empty FROM/TO/LEADER is
                          printed as -.
  reload                  Re-read nonstopd's config file: unchanged channels keep
                          running; an invalid file changes nothing (exit 4).
  fleet status            The fleet as this nonstopd sees it: its node, whether
                          etcd answers, every member (alive or down, drained,
                          capacity, the channels it leads; * marks this box) and
                          every channel's role here (active, standby, off), its
                          leader and the fencing token this box leads it under
                          (- when it does not). --json: one object
                          (NodeName, EtcdReachable, Members, Channels).
  fleet drain NODE        Drain NODE (this box or another): the channels it
                          leads move to other boxes and none is placed on it.
  fleet undrain NODE      NODE takes channels again.
                          The fleet commands need a nonstopd with [fleet]
                          (otherwise NoFleet, exit 4); a drain etcd refuses or
                          does not answer is Failed (exit 4).

Options:
  --session, --user       the session bus only
  --system                the system bus only
                          (default: the system bus, where the service runs,
                          then the session bus)
  --address ADDR          the bus at ADDR, e.g. unix:path=/run/nonstop/bus
  --json                  machine-readable output (status, drill, watch,
                          fleet status)
  --for DURATION          how long a drill's fault lasts
  -h, --help              this text
  -V, --version           nonstopctl's version

Exit codes:
  0  done (a drill: it passed)
  1  the operation failed: the drill did not pass (the report is printed and
     `nonstopctl: drill did not pass: REASON` goes to stderr), or an
     unexpected answer
  2  usage: unknown command or option, missing or extra arguments, a bad
     duration or mode (the usage goes to stderr)
  3  the bus cannot be reached, nonstopd is not running on it, or it did not
     answer in time (watch: the connection was lost)
  4  nonstopd (or the bus policy) refused the request with a named D-Bus
     error; stderr has `nonstopctl: NAME: MESSAGE`, where NAME is the last
     part of the error name: NoSuchChannel, NoSuchInput, NoSuchOutput,
     InvalidArgument, Busy, NoFleet, Failed, AccessDenied, ...

Every error message goes to stderr as one line starting with `nonstopctl: `.
Successful commands that change something print nothing.";

/// The exit codes and the shape of errors: the end of `HELP` (the man
/// page's EXIT STATUS).
pub fn exit_codes() -> &'static str {
    const HEADING: &str = "Exit codes:\n";
    HELP.find(HEADING)
        .map_or("", |at| &HELP[at + HEADING.len()..])
}
