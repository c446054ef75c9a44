#!/bin/sh
# snap.sh LABEL PID...: prints CPU seconds (utime+stime from /proc) of each pid and redis commandstats
label=$1; shift
tck=$(getconf CLK_TCK)
for p in "$@"; do awk -v t=$tck -v p=$p -v l=$label '{printf "%s cpu pid=%s %.2f s\n", l, p, ($14+$15)/t}' /proc/$p/stat; done
redis-cli -p 16391 INFO commandstats | grep cmdstat | sed "s/^/$label /"
redis-cli -p 16391 INFO stats | grep -E 'total_commands_processed|total_net_input_bytes|total_net_output_bytes|pubsub' | sed "s/^/$label /"
redis-cli -p 16391 INFO memory | grep -E '^used_memory:' | sed "s/^/$label /"
