# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_nonstopd_global_optspecs
    string join \n h/help V/version c/config= session system address= no-dbus metrics= log-format=
end

function __fish_nonstopd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_nonstopd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_nonstopd_using_subcommand
    set -l cmd (__fish_nonstopd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c nonstopd -n "__fish_nonstopd_needs_command" -s c -l config -d 'Run the channels of FILE (default /etc/nonstop/nonstopd.toml, with conf.d/*.toml) until SIGTERM/SIGINT' -r
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l address -d 'The D-Bus API on the bus at ADDR' -r
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l metrics -d 'Prometheus /metrics and /api/status over HTTP at HOST:PORT (default 127.0.0.1:9464; "" for none)' -r
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l log-format -d 'How logs are written: text (native journald records under systemd) or one JSON object per line' -r -f -a "text\t'Lines of text (native journald records under systemd)'
json\t'One JSON object per line'"
complete -c nonstopd -n "__fish_nonstopd_needs_command" -s h -l help -d 'The usage'
complete -c nonstopd -n "__fish_nonstopd_needs_command" -s V -l version -d 'nonstopd\'s version'
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l session -d 'The D-Bus API org.nonstop.Supervisor1 on the session bus (default)'
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l system -d 'The D-Bus API on the system bus'
complete -c nonstopd -n "__fish_nonstopd_needs_command" -l no-dbus -d 'No D-Bus API'
complete -c nonstopd -n "__fish_nonstopd_needs_command" -f -a "check" -d 'Validate FILE (default: what the service loads) and print what it would build'
complete -c nonstopd -n "__fish_nonstopd_using_subcommand check" -s h -l help -d 'The usage'
