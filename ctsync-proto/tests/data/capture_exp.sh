#!/bin/sh
# Captures conntrackd 1.4.7 FT-FW expectation sync: an FTP control connection from namespace C to a tiny
# server in namespace A, with the kernel's ftp helper assigned by nftables in A, makes the helper create
# an expectation on the server's PASV reply; conntrackd in A (ExpectationSync on) sends it to B.
# Usage: capture_exp.sh OUTFILE   (root; namespaces ctsA_PID, ctsB_PID, ctsC_PID are deleted at exit;
# conntrackd, tshark and the two python helpers are stopped by PID)
set -eu
OUT=${1:-/dev/stdout}
A=ctsA_$$; B=ctsB_$$; C=ctsC_$$
DIR=$(mktemp -d /tmp/ctsync-capture.XXXXXX)
cleanup() {
  for f in "$DIR"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.3
  ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; ip netns del $C 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns add $A; ip netns add $B; ip netns add $C
for n in $A $B $C; do ip -n $n link set lo up; done
ip -n $A link add va type veth peer name vb netns $B
ip -n $A addr add 10.99.0.1/24 dev va; ip -n $B addr add 10.99.0.2/24 dev vb
ip -n $A link set va up; ip -n $B link set vb up
ip -n $A link add vc type veth peer name vd netns $C
ip -n $A addr add 10.99.1.1/24 dev vc; ip -n $C addr add 10.99.1.2/24 dev vd
ip -n $A link set vc up; ip -n $C link set vd up
ip netns exec $A nft -f - <<'NFT'
table inet ftp {
	ct helper ftp-standard {
		type "ftp" protocol tcp;
	}
	chain pre {
		type filter hook prerouting priority 0;
		tcp dport 21 ct helper set "ftp-standard"
	}
}
NFT
conf() { # name local peer iface
cat > "$DIR/$1.conf" <<CONF
Sync {
	Mode FTFW {
	}
	UDP {
		IPv4_address $2
		IPv4_Destination_Address $3
		Port 3780
		Interface $4
		Checksum on
	}
	Options {
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
# A minimal FTP server: banner, then a PASV answer naming 10.99.1.1 port 50000 (195 * 256 + 80).
ip netns exec $A python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.99.1.1", 21)); s.listen(1)
c, _ = s.accept(); c.sendall(b"220 ready\r\n"); c.recv(100)
c.sendall(b"227 Entering Passive Mode (10,99,1,1,195,80)\r\n"); time.sleep(8)
' & echo $! > "$DIR/server.pid"
sleep 0.5
ip netns exec $C python3 -c '
import socket, time
c = socket.create_connection(("10.99.1.1", 21)); c.recv(100); c.sendall(b"PASV\r\n"); c.recv(100); time.sleep(8)
' & echo $! > "$DIR/client.pid"
sleep 2
ip netns exec $A conntrack -L expect >&2 || true
ip netns exec $B conntrackd -C "$DIR/b.conf" -i expect >&2 || true
ip netns exec $B conntrackd -C "$DIR/b.conf" -e expect >&2 || true
# delete the expectation: an EXP_DEL
ip netns exec $A conntrack -F expect >&2 || true
sleep 1.5
kill "$(cat "$DIR/tshark.pid")"; rm "$DIR/tshark.pid"; sleep 1
tshark -r "$DIR/cap.pcapng" -T fields -e data > "$OUT" 2>/dev/null
