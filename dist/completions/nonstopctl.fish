# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nonstopctl_global_optspecs
    string join \n h/help V/version session system address= json for=
end

function __fish_nonstopctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nonstopctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nonstopctl_using_subcommand
    set -l cmd (__fish_nonstopctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "status" -d 'Every channel (or CHANNEL): state, mode, the input on air, inputs, outputs and encoders'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "switch" -d 'Put INPUT on air; the channel goes to manual mode'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "mode" -d 'auto: the switch chooses the input again; manual: hold the input on air'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "restart" -d 'Rebuild an input or an output now (no backoff)'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "start" -d 'Build and start a stopped channel'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "stop" -d 'Take the channel off air until `start`'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "drill" -d 'A failover drill; exit 0 only if it passed'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "cue" -d 'Place an SCTE-35 cue (ad break) on a channel\'s TS outputs'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "watch" -d 'Live events as lines, until SIGINT or SIGTERM'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "reload" -d 'Re-read nonstopd\'s config file (all or nothing)'
complete -c nonstopctl -n "__fish_nonstopctl_needs_command" -f -a "fleet" -d 'The fleet: its members and each channel\'s role; drain or undrain a box'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand status" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand switch" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand mode" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand restart" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand start" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand stop" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand drill" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l duration -d 'A splice-out\'s break: it returns by itself after this (e.g. 30s)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l preroll -d 'The splice this long from now (default 4s)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l at -d 'The splice at this UTC time (RFC 3339, e.g. 2026-12-07T20:00:00Z)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand cue" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand watch" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand reload" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -f -a "status" -d 'This box\'s node, etcd, every member and every channel\'s role, leader and token'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -f -a "drain" -d 'Drain NODE: the channels it leads move to other boxes, none is placed on it'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and not __fish_seen_subcommand_from status drain undrain" -f -a "undrain" -d 'Undrain NODE: it takes channels again'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from status" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from drain" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -l address -d 'The bus at ADDR, e.g. unix:path=/run/nonstop/bus' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -l for -d 'How long a drill\'s fault lasts (default 10s; e.g. 500ms, 10s, 1m)' -r
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -s h -l help -d 'Everything, with the exit codes'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -s V -l version -d 'nonstopctl\'s version'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -l session -l user -d 'The session bus only (default: the system bus, then the session bus)'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -l system -d 'The system bus only'
complete -c nonstopctl -n "__fish_nonstopctl_using_subcommand fleet; and __fish_seen_subcommand_from undrain" -l json -d 'Machine-readable output (status, drill, watch, fleet status)'
