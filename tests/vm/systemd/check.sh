#!/bin/bash
# The package under a real systemd (run inside the VM by lb-vm-test.service,
# after multi-user.target): install, start (READY=1), reload, a bad reload,
# restart in place (SIGUSR1), the watchdog, an upgrade, stop, remove.
# Each check prints "ok NAME" or "FAILED NAME: why"; the last line sums up.
set -u
cd /root/lb
passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAILED $1: $2"; failed=$((failed + 1)); }
# check NAME COMMAND...: passes when the command succeeds.
check() { local name=$1; shift; if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -5)"; fi; }
main_pid() { systemctl show --property MainPID --value lbd.service; }
# wait_for SECONDS COMMAND...: until the command succeeds.
wait_for() { local n=$(($1 * 10)); shift; while [ "$n" -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done; "$@"; }
metric() { curl -sS --max-time 5 http://127.0.0.1:9477/metrics | awk -v s="$1" 'index($0, s" ") == 1 { print $2 }'; }
B1='{vip="192.0.2.100",port="80",proto="tcp",backend="192.0.2.11:80"}'
VI='{instance="VI_1"}'

# The interface lbd serves: a dummy link (the VM has no NIC).
ip link add lb0 type dummy && ip addr add 192.0.2.1/24 dev lb0 && ip link set lb0 up
mkdir -p /etc/lb
cat > /etc/lb/keepalived.conf <<'CONF'
vrrp_instance VI_1 {
    state MASTER
    interface lb0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/32 dev lb0
    }
}
virtual_server 192.0.2.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 192.0.2.11 80 {
        weight 2
    }
    real_server 192.0.2.12 80 {
        weight 1
    }
}
CONF
echo 'LBD_OPTS="--interface lb0 --xdp-mode skb --metrics-addr 127.0.0.1:9477"' > /etc/default/lbd

# The oldest and the newest package here (the newest is installed over
# the running oldest).
old='' new=''
for d in lb_*.deb; do
	v=$(dpkg-deb -f "$d" Version)
	if [ -z "$old" ] || dpkg --compare-versions "$v" lt "$(dpkg-deb -f "$old" Version)"; then old=$d; fi
	if [ -z "$new" ] || dpkg --compare-versions "$v" gt "$(dpkg-deb -f "$new" Version)"; then new=$d; fi
done
check "install: apt installs $old (the configuration kept)" \
	env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "./$old"
check "install: the lb group exists" getent group lb
check "install: lbd.service is enabled" systemctl is-enabled lbd.service
check "start: lbd is active (Type=notify, READY=1)" wait_for 60 systemctl is-active lbd.service
check "start: the control socket belongs to group lb" sh -c '[ "$(stat -c %G /run/lb/lbd.sock)" = lb ]'
check "start: lbctl reaches lbd" lbctl services
check "start: maps pinned on the host bpffs" sh -c 'ls /sys/fs/bpf/lb | grep -q .'
# weight_is W: lbctl shows 192.0.2.11's configured weight W (its data
# plane weight is 0 here: on a dummy link no backend MAC resolves).
weight_is() { wait_for 15 sh -c "lbctl backends | sed 's/ (not ready)//' | awk '\$2 == \"192.0.2.11:80\" { print \$4 }' | grep -qx $1" || { lbctl backends; false; }; }
check "start: lbctl shows the configured weight" weight_is 2
check "start: metrics served" sh -c "curl -sS --max-time 5 http://127.0.0.1:9477/metrics | grep -qF 'lb_backend_weight$B1'"
check "start: VRRP master" wait_for 10 sh -c 'lbctl vrrp | grep -q MASTER'
systemctl is-active --quiet lbd.service || journalctl -u lbd.service --no-pager | tail -20
check "journal: lbd's lines are in the journal" sh -c 'journalctl -u lbd.service -o json | grep -q "\"SYSLOG_IDENTIFIER\":\"lbd\""'

sed -i 's/weight 2/weight 5/' /etc/lb/keepalived.conf
check "reload: systemctl reload succeeds" systemctl reload lbd.service
check "reload: lbctl shows the new weight" weight_is 5
good=$(cat /etc/lb/keepalived.conf)
echo 'virtual_server 192.0.2.100 80 { lb_algo nonesuch' >> /etc/lb/keepalived.conf
systemctl reload lbd.service
check "bad reload: lbd stays active" systemctl is-active lbd.service
check "bad reload: the running weight is kept" weight_is 5
check "bad reload: the error is in the journal with its location" \
	wait_for 10 sh -c 'journalctl -u lbd.service | grep -q "keepalived.conf:[0-9]*:[0-9]*"'
echo "$good" > /etc/lb/keepalived.conf

pins=$(ls -i /sys/fs/bpf/lb | sort)
trans=$(metric "lb_vrrp_transitions_total$VI")
pid=$(main_pid)
systemctl kill --kill-who=main --signal=USR1 lbd.service
check "restart in place: a new lbd is active" \
	wait_for 30 sh -c "[ \"\$(systemctl show --property MainPID --value lbd.service)\" != $pid ] && systemctl is-active lbd.service"
check "restart in place: the same pins" sh -c "[ \"\$(ls -i /sys/fs/bpf/lb | sort)\" = \"$pins\" ]"
check "restart in place: still VRRP master, no transition" \
	wait_for 10 sh -c "lbctl vrrp | grep -q MASTER && [ \"\$(curl -sS http://127.0.0.1:9477/metrics | grep '^lb_vrrp_transitions_total$VI ' | cut -d' ' -f2)\" = \"$trans\" ]"

pid=$(main_pid)
kill -STOP "$pid"
check "watchdog: a hung lbd is restarted" \
	wait_for 40 sh -c "[ \"\$(systemctl show --property MainPID --value lbd.service)\" != $pid ] && systemctl is-active lbd.service"
check "watchdog: the journal says why" sh -c 'journalctl -u lbd.service | grep -qi watchdog'

echo "--- systemd-analyze security lbd.service"
systemd-analyze security --no-pager lbd.service | tail -3

if [ "$new" != "$old" ]; then
	wait_for 10 sh -c 'lbctl vrrp | grep -q MASTER'
	pid=$(main_pid)
	trans=$(metric "lb_vrrp_transitions_total$VI")
	check "upgrade: apt installs $new over the running $old" \
		env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "./$new"
	check "upgrade: a new lbd is active" sh -c "[ \"\$(systemctl show --property MainPID --value lbd.service)\" != $pid ] && systemctl is-active lbd.service"
	check "upgrade: the new version is installed" test "$(dpkg-query -W -f '${Version}' lb)" = "$(dpkg-deb -f "$new" Version)"
	check "upgrade: no VRRP transition" test "$(metric "lb_vrrp_transitions_total$VI")" = "$trans"
	check "upgrade: still VRRP master" sh -c 'lbctl vrrp | grep -q MASTER'
fi

check "stop: systemctl stop" systemctl stop lbd.service
check "stop: inactive" sh -c '! systemctl is-active lbd.service'
check "stop: the VIP is handed over (removed)" sh -c '! ip addr show dev lb0 | grep -q 192.0.2.100'
check "remove: apt removes lb" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q lb
check "remove: the pins are gone" sh -c '[ ! -e /sys/fs/bpf/lb ]'

echo "--- journalctl -u lbd (last lines)"
journalctl -u lbd.service --no-pager | tail -15
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
