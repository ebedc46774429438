-- imix.lua: the simple IMIX, frames of 64, 594 and 1518 bytes in the proportion 7:4:1,
-- TCP to the VIP:port.
-- pktgen-dpdk 23.06.1 has no IMIX setting. Its sequence mode sends the entries of a
-- port's sequence table: a table of 12 entries, seven of 64 bytes, four of 594 and one of
-- 1518, gives the 7:4:1 mix. pktgen builds its transmit buffers from the entries in turn
-- and sends them in pool order, so the mix holds over the run, not frame by frame; the
-- result lines show the measured average frame size against the expected one. Each entry
-- has its own source port: 12 flows.
-- Run through perf/pktgen/run.sh; see README.md for the variables.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

-- Sizes count the Ethernet CRC, as IMIX does; the memif frames are 4 bytes shorter.
local ORDER = { 64, 594, 64, 64, 1518, 64, 594, 64, 64, 594, 64, 594 }

C.run("imix", function(p)
    local rate = C.env_num("TANDEM_PKTGEN_RATE", 100, 0.01, 100)
    C.check_bench_range("TANDEM_PKTGEN_SRC_IP", p.src_ip, 1)
    if p.src_port + #ORDER - 1 > 65535 then
        error("TANDEM_PKTGEN_SRC_PORT too high")
    end
    C.setup_ports(p)
    local t = tostring(p.tx)
    -- pktgen.seq/seqTable in 23.06 read their port list from the first argument (the
    -- entry number), so the entries go through the command language instead.
    local src_mac = pktgen.pktStats(t)[p.tx].mac_addr
    local cmds, sum = {}, 0
    for i, size in ipairs(ORDER) do
        cmds[#cmds + 1] = string.format(
            "seq %d %s dst %s src %s dst %s src %s/16 sport %d dport %d ipv4 tcp vlan 1 size %d",
            i - 1, t, p.dst_mac, src_mac, p.vip, p.src_ip, p.src_port + i - 1, p.vport, size)
        sum = sum + size - 4
    end
    C.run_cmds(cmds)
    pktgen.set(t, "seq_cnt", #ORDER)
    pktgen.set(t, "rate", rate)

    local m = C.measure(p)
    local lines = {
        { "script", "imix" },
        { "status", "ok" },
        { "imix", "64:7,594:4,1518:1" },
        { "rate_pct", rate },
        { "flows", #ORDER },
        { "dst", p.vip .. ":" .. p.vport },
        { "expected_avg_frame_bytes", sum / #ORDER },
        { "tx_avg_frame_bytes", (m.tx_pkts > 0) and (m.tx_bytes / m.tx_pkts) or 0.0 },
        { "rx_avg_frame_bytes", (m.rx_pkts > 0) and (m.rx_bytes / m.rx_pkts) or 0.0 },
    }
    C.write(p, C.standard_lines(p, m, lines))
end)
