-- latency.lua: latency through the DUT at a modest load. pktgen sends 64-byte TCP frames at
-- TANDEM_PKTGEN_RATE percent of the port speed and, every TANDEM_PKTGEN_LATENCY_US
-- microseconds, one timestamped frame; the receiving port reads the stamp back (both ports
-- are on the same lcore, same clock). At high rates over memif, 23.06's latency packets
-- can stall the sender: keep the load modest. The stamped frames are UDP (23.06 makes
-- them so), the load TCP: a DUT that passes TCP only (Tandem) drops the stamped frames, and
-- the script then reports status=no_latency_samples.
-- pktgen-dpdk 23.06.1. Run through perf/pktgen/run.sh; see README.md for the variables.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

C.run("latency", function(p)
    local rate = C.env_num("TANDEM_PKTGEN_RATE", 0.1, 0.01, 100)
    local every_us = C.env_int("TANDEM_PKTGEN_LATENCY_US", 1000, 1, 1000000)
    C.check_bench_range("TANDEM_PKTGEN_SRC_IP", p.src_ip, 1)
    C.setup_ports(p)
    local t = tostring(p.tx)
    pktgen.set(t, "size", 64)
    pktgen.set(t, "sport", p.src_port)
    pktgen.set(t, "dport", p.vport)
    pktgen.set(t, "rate", rate)
    -- Both ports: the sender stamps, the receiver measures.
    pktgen.latency("all", "rate", every_us)
    pktgen.latency("all", "enable")

    local m = C.measure(p)
    local lat = pktgen.pktStats(tostring(p.rx))[p.rx].latency
    pktgen.latency("all", "disable")
    local lines = {
        { "script", "latency" },
        -- 23.06 stamps its latency frames as UDP: a TCP-only DUT (Tandem) drops them all.
        { "status", (lat.num_pkts > 0) and "ok" or "no_latency_samples" },
        { "frame_size", 64 },
        { "rate_pct", rate },
        { "latency_every_us", every_us },
        { "dst", p.vip .. ":" .. p.vport },
        { "latency_samples", lat.num_pkts },
        { "latency_skipped", lat.num_skipped },
        { "latency_min_us", lat.min_us },
        { "latency_avg_us", lat.avg_us },
        { "latency_max_us", lat.max_us },
        { "latency_jitter_over_threshold", lat.jitter_count },
    }
    C.write(p, C.standard_lines(p, m, lines))
end)
