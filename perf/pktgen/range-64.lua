-- range-64.lua: 64-byte TCP frames at line rate (of the port's reported speed) over many
-- flows, all to one virtual service VIP:port, with pktgen's range mode.
-- Flows: TANDEM_PKTGEN_FLOWS = (source addresses) x (source ports), split by common.lua.
-- pktgen-dpdk 23.06.1. Run through perf/pktgen/run.sh; see README.md for the variables.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

C.run("range-64", function(p)
    local rate = C.env_num("TANDEM_PKTGEN_RATE", 100, 0.01, 100)
    local flows = C.env_int("TANDEM_PKTGEN_FLOWS", 10000, 1, 4000000)
    local size = C.env_int("TANDEM_PKTGEN_SIZE", 64, 64, 1518)
    if p.src_port + 1 > 65535 then
        error("TANDEM_PKTGEN_SRC_PORT too high")
    end
    local split = C.split_flows(flows, 65535 - p.src_port + 1)
    C.check_bench_range("TANDEM_PKTGEN_SRC_IP", p.src_ip, split.ips)
    local ip0 = C.ip_to_int(p.src_ip)
    local ip1 = C.int_to_ip(ip0 + split.ips - 1)
    local port1 = p.src_port + split.ports - 1

    C.setup_ports(p)
    local t = tostring(p.tx)
    pktgen.range.set_type(t, "ipv4")
    pktgen.range.ip_proto(t, "tcp")
    pktgen.range.dst_mac(t, "start", p.dst_mac)
    pktgen.range.dst_ip(t, "start", p.vip)
    pktgen.range.dst_ip(t, "min", p.vip)
    pktgen.range.dst_ip(t, "max", p.vip)
    pktgen.range.dst_ip(t, "inc", "0.0.0.0")
    pktgen.range.src_ip(t, "start", p.src_ip)
    pktgen.range.src_ip(t, "min", p.src_ip)
    pktgen.range.src_ip(t, "max", ip1)
    pktgen.range.src_ip(t, "inc", (split.ips > 1) and "0.0.0.1" or "0.0.0.0")
    pktgen.range.dst_port(t, "start", p.vport)
    pktgen.range.dst_port(t, "min", p.vport)
    pktgen.range.dst_port(t, "max", p.vport)
    pktgen.range.dst_port(t, "inc", 0)
    pktgen.range.src_port(t, "start", p.src_port)
    pktgen.range.src_port(t, "min", p.src_port)
    pktgen.range.src_port(t, "max", port1)
    pktgen.range.src_port(t, "inc", (split.ports > 1) and 1 or 0)
    pktgen.range.pkt_size(t, "start", size)
    pktgen.range.pkt_size(t, "min", size)
    pktgen.range.pkt_size(t, "max", size)
    pktgen.range.pkt_size(t, "inc", 0)
    pktgen.set(t, "rate", rate)
    pktgen.set_range(t, "on")

    local m = C.measure(p)
    local lines = {
        { "script", "range-64" },
        { "status", "ok" },
        { "frame_size", size },
        { "rate_pct", rate },
        { "flows", split.ips * split.ports },
        { "flows_sent_at_most", math.min(split.ips * split.ports, C.RANGE_BUFFERS) },
        { "src_ips", p.src_ip .. "-" .. ip1 },
        { "src_ports", p.src_port .. "-" .. port1 },
        { "dst", p.vip .. ":" .. p.vport },
    }
    C.write(p, C.standard_lines(p, m, lines))
end)
