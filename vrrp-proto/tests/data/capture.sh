#!/bin/sh
# Captures the VRRP byte vectors in this directory from keepalived 2.2.7 (Debian 12 package).
#
# Two namespaces joined by a veth pair: keepalived runs in `vka` (10.77.0.1, fd00:77::1 and its link-local
# address) with four instances, tshark captures on the far end in `vkb` (10.77.0.2). After about 6 s
# keepalived is stopped with SIGTERM, which makes every master instance send its priority-0 advert
# (RFC 5798 §6.4.3 "Shutdown"), then tshark stops by itself.
#
#   sudo sh vrrp-proto/tests/data/capture.sh        (reads keepalived.conf, writes capture.hex next to itself)
#
# Each line of capture.hex is `SRC DST HEX`: the IP source and destination and the VRRP payload as hex
# (the format the vrrp_decode example reads). The other *.hex files are lines picked from it (README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
cleanup() {
    [ -f "$tmp/ka.pid" ] && kill "$(cat "$tmp/ka.pid")" 2>/dev/null || true
    [ -f "$tmp/ts.pid" ] && kill "$(cat "$tmp/ts.pid")" 2>/dev/null || true
    ip netns del vka 2>/dev/null || true
    ip netns del vkb 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add vka
ip netns add vkb
ip netns exec vka ip link set lo up
ip netns exec vkb ip link set lo up
ip -n vka link add va type veth peer name vb netns vkb
# Fixed MAC addresses give fixed IPv6 link-local addresses (fe80::a8c1:abff:fe00:1 and ...:2).
ip -n vka link set va address aa:c1:ab:00:00:01
ip -n vkb link set vb address aa:c1:ab:00:00:02
ip -n vka addr add 10.77.0.1/24 dev va
ip -n vkb addr add 10.77.0.2/24 dev vb
ip -n vka addr add fd00:77::1/64 dev va nodad
ip -n vkb addr add fd00:77::2/64 dev vb nodad
ip netns exec vka sysctl -qw net.ipv6.conf.va.accept_dad=0
ip netns exec vkb sysctl -qw net.ipv6.conf.vb.accept_dad=0
ip -n vka link set va up
ip -n vkb link set vb up
sleep 1
cp "$here/keepalived.conf" "$tmp/ka.conf"
ip netns exec vkb tshark -q -i vb -f 'ip proto 112 or ip6 proto 112' -w "$tmp/cap.pcapng" -a duration:9 \
    >/dev/null 2>&1 &
echo $! > "$tmp/ts.pid"
sleep 2
ip netns exec vka keepalived -f "$tmp/ka.conf" -n -l -D -p "$tmp/ka.pid" -r "$tmp/ka-vrrp.pid" \
    >"$tmp/ka.log" 2>&1 &
kpid=$!
sleep 6
kill -TERM "$kpid"
wait "$kpid" || true
wait "$(cat "$tmp/ts.pid")" || true
tshark -r "$tmp/cap.pcapng" -T json -x | jq -r '.[]._source.layers
    | [ (.ip // .ipv6) as $l
        | ($l["ip.src"] // $l["ipv6.src"]), ($l["ip.dst"] // $l["ipv6.dst"]),
          ($l["ip.ttl"] // $l["ipv6.hlim"]), .vrrp_raw[0] ] | join(" ")' > "$tmp/lines"
# Every packet must have left with TTL / hop limit 255 (RFC 5798 §5.1.1.3); the column is then dropped.
if awk '$3 != 255 { bad = 1 } END { exit !bad }' "$tmp/lines"; then echo "a TTL was not 255" >&2; exit 1; fi
{
    echo "# Every advert seen by capture.sh, in order: SRC DST HEX (TTL / hop limit was 255 for all)."
    awk '{ print $1, $2, $4 }' "$tmp/lines"
} > "$here/capture.hex"
