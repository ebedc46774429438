-- syn-flood.lua: TCP SYNs from many sources (addresses x ports) to the VIP:port, with
-- pktgen's range mode and the SYN flag alone set. pktgen sends them statelessly: no
-- handshake follows, every SYN carries the same sequence number. The default, 24000
-- sources (64 addresses x 375 ports), stays under pktgen's range-buffer limit (common.lua).
-- pktgen-dpdk 23.06.1. Run through perf/pktgen/run.sh; see README.md for the variables.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

C.run("syn-flood", function(p)
    local rate = C.env_num("TANDEM_PKTGEN_RATE", 100, 0.01, 100)
    local flows = C.env_int("TANDEM_PKTGEN_FLOWS", 24000, 1, 4000000)
    local split = C.split_flows(flows, 65535 - p.src_port + 1)
    C.check_bench_range("TANDEM_PKTGEN_SRC_IP", p.src_ip, split.ips)
    local ip1 = C.int_to_ip(C.ip_to_int(p.src_ip) + split.ips - 1)
    local port1 = p.src_port + split.ports - 1

    C.setup_ports(p)
    local t = tostring(p.tx)
    pktgen.range.set_type(t, "ipv4")
    pktgen.range.ip_proto(t, "tcp")
    pktgen.range.dst_mac(t, "start", p.dst_mac)
    for _, w in ipairs({ "start", "min", "max" }) do
        pktgen.range.dst_ip(t, w, p.vip)
        pktgen.range.dst_port(t, w, p.vport)
        pktgen.range.pkt_size(t, w, 64)
    end
    pktgen.range.dst_ip(t, "inc", "0.0.0.0")
    pktgen.range.dst_port(t, "inc", 0)
    pktgen.range.pkt_size(t, "inc", 0)
    pktgen.range.src_ip(t, "start", p.src_ip)
    pktgen.range.src_ip(t, "min", p.src_ip)
    pktgen.range.src_ip(t, "max", ip1)
    pktgen.range.src_ip(t, "inc", (split.ips > 1) and "0.0.0.1" or "0.0.0.0")
    pktgen.range.src_port(t, "start", p.src_port)
    pktgen.range.src_port(t, "min", p.src_port)
    pktgen.range.src_port(t, "max", port1)
    pktgen.range.src_port(t, "inc", (split.ports > 1) and 1 or 0)

    -- 23.06's Lua API has no TCP flag setter; its command language has one.
    C.run_cmds({ "range " .. t .. " tcp flag clr all", "range " .. t .. " tcp flag set syn" })

    pktgen.set(t, "rate", rate)
    pktgen.set_range(t, "on")

    local m = C.measure(p)
    local lines = {
        { "script", "syn-flood" },
        { "status", "ok" },
        { "frame_size", 64 },
        { "tcp_flags", "syn" },
        { "rate_pct", rate },
        { "sources", split.ips * split.ports },
        { "sources_sent_at_most", math.min(split.ips * split.ports, C.RANGE_BUFFERS) },
        { "src_ips", p.src_ip .. "-" .. ip1 },
        { "src_ports", p.src_port .. "-" .. port1 },
        { "dst", p.vip .. ":" .. p.vport },
    }
    C.write(p, C.standard_lines(p, m, lines))
end)
