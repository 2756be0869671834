#!/bin/sh
# Captures conntrackd 1.4.7 FT-FW sync traffic between two namespaces and prints one hex UDP payload per line.
# Usage: [MODE=FTFW|ALARM|NOTRACK] capture.sh OUTFILE
#   (run as root; creates and deletes namespaces ctsA_$$ and ctsB_$$; stops conntrackd and tshark by PID)
set -eu
OUT=${1:-/dev/stdout}
MODE=${MODE:-FTFW}
case $MODE in
  FTFW) MODECONF="Mode FTFW {
		ResendQueueSize 131072
		ACKWindowSize 20
	}" ;;
  ALARM) MODECONF="Mode ALARM {
		RefreshTime 2
		CacheTimeout 20
	}" ;;
  NOTRACK) MODECONF="Mode NOTRACK {
	}" ;;
  *) echo "unknown MODE $MODE" >&2; exit 2 ;;
esac
A=ctsA_$$; B=ctsB_$$
DIR=$(mktemp -d /tmp/ctsync-capture.XXXXXX)
cleanup() {
  for f in "$DIR"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3
  ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add $A; ip netns add $B
ip -n $A link set lo up; ip -n $B link set lo up
ip -n $A link add va type veth peer name vb netns $B
ip -n $A addr add 10.99.0.1/24 dev va; ip -n $B addr add 10.99.0.2/24 dev vb
ip -n $A link set va up; ip -n $B link set vb up
conf() { # name local peer iface
cat > "$DIR/$1.conf" <<CONF
Sync {
	$MODECONF
	UDP {
		IPv4_address $2
		IPv4_Destination_Address $3
		Port 3780
		Interface $4
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
	Options {
		TCPWindowTracking on
		ExpectationSync on
	}
}
General {
	Systemd off
	HashSize 8192
	HashLimit 65535
	LogFile $DIR/$1.log
	Syslog off
	LockFile $DIR/$1.lock
	UNIX {
		Path $DIR/$1.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
}
CONF
}
conf a 10.99.0.1 10.99.0.2 va
conf b 10.99.0.2 10.99.0.1 vb
ip netns exec $A tshark -q -i va -f 'udp port 3780' -w "$DIR/cap.pcapng" >/dev/null 2>&1 & echo $! > "$DIR/tshark.pid"
sleep 2
ip netns exec $B conntrackd -C "$DIR/b.conf" & echo $! > "$DIR/b.pid"
ip netns exec $A conntrackd -C "$DIR/a.conf" & echo $! > "$DIR/a.pid"
sleep 1.5
CT="ip netns exec $A conntrack"
# TCP with TCP state (window scale is replicated when TCPWindowTracking is on)
$CT -I -p tcp -s 192.168.1.10 -d 192.168.1.20 --sport 40000 --dport 80 --state ESTABLISHED -t 300 -u ASSURED
# UDP with a mark
$CT -I -p udp -s 192.168.1.10 -d 192.168.1.53 --sport 5353 --dport 53 -t 60 -m 7
# ICMP echo
$CT -I -p icmp -s 192.168.1.10 -d 192.168.1.1 --icmp-type 8 --icmp-code 0 --icmp-id 4321 -t 30
# IPv6 UDP and ICMPv6
$CT -I -p udp -s 2001:db8::1 -d 2001:db8::2 --sport 1000 --dport 2000 -t 60
$CT -I -p icmpv6 -s 2001:db8::1 -d 2001:db8::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 99 -t 30
# zone
$CT -I -p udp -s 192.168.2.10 -d 192.168.2.20 --sport 111 --dport 222 -t 60 -w 5
# SNAT (source address and port) and DNAT (destination address and port)
$CT -I -p tcp -s 192.168.1.11 -d 198.51.100.7 --sport 41000 --dport 443 --state ESTABLISHED -t 300 --src-nat 203.0.113.1:61000
$CT -I -p udp -s 198.51.100.9 -d 203.0.113.1 --sport 5000 --dport 53 -t 60 --dst-nat 192.168.1.53:5353
# IPv6 SNAT
$CT -I -p tcp -s 2001:db8::10 -d 2001:db8:1::20 --sport 3000 --dport 443 --state ESTABLISHED -t 300 --src-nat 2001:db8:ffff::1
sleep 1.5
# updates
$CT -U -p udp -s 192.168.1.10 -d 192.168.1.53 --sport 5353 --dport 53 -m 9
$CT -U -p tcp -s 192.168.1.10 -d 192.168.1.20 --sport 40000 --dport 80 -m 3
sleep 1.5
# deletes
$CT -D -p udp -s 192.168.1.10 -d 192.168.1.53 --sport 5353 --dport 53
$CT -D -p icmp -s 192.168.1.10 -d 192.168.1.1
$CT -D -f ipv6 -p udp -s 2001:db8::1
sleep 1.5
# a resync request from B is answered by a bulk send from A's internal cache
ip netns exec $B conntrackd -C "$DIR/b.conf" -n
sleep 2.5
kill "$(cat "$DIR/tshark.pid")"; rm "$DIR/tshark.pid"; sleep 1
tshark -r "$DIR/cap.pcapng" -T fields -e data > "$OUT" 2>/dev/null
cat "$DIR"/*.log >&2 || true
