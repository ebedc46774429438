-- Shared helpers for the Tandem pktgen-dpdk scripts (pktgen-dpdk 23.06.1 Lua API).
-- Loaded by each script with dofile(); not meant to be run by itself.
--
-- Conventions: parameters come from TANDEM_PKTGEN_* environment variables (pktgen
-- scripts take no arguments); results go to $TANDEM_PKTGEN_OUT as key=value lines;
-- every script stops its traffic after a bounded duration and calls pktgen.quit().

local M = {}

function M.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

function M.env_num(name, default, min, max)
    local raw = M.env(name, nil)
    if raw == nil then
        return default
    end
    local v = tonumber(raw)
    if v == nil or v < min or v > max then
        error(string.format("%s=%s: want a number in [%s, %s]", name, raw, min, max))
    end
    return v
end

function M.env_int(name, default, min, max)
    local v = M.env_num(name, default, min, max)
    if v ~= math.floor(v) then
        error(string.format("%s=%s: want a whole number", name, tostring(v)))
    end
    return math.floor(v)
end

-- IPv4 dotted quad <-> 32-bit integer, for ranges and the 198.18.0.0/15 check.
function M.ip_to_int(s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a == nil then
        error("not an IPv4 address: " .. s)
    end
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a > 255 or b > 255 or c > 255 or d > 255 then
        error("not an IPv4 address: " .. s)
    end
    return ((a * 256 + b) * 256 + c) * 256 + d
end

function M.int_to_ip(n)
    return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- Benchmark traffic stays inside 198.18.0.0/15 (RFC 2544 benchmarking range).
local BENCH_LO = (198 << 24) | (18 << 16)
local BENCH_HI = BENCH_LO + (1 << 17) - 1

function M.check_bench_range(what, first, count)
    local lo = M.ip_to_int(first)
    if lo < BENCH_LO or lo + count - 1 > BENCH_HI then
        error(string.format("%s %s (+%d) leaves 198.18.0.0/15", what, first, count - 1))
    end
end

local function gcd(a, b)
    while b ~= 0 do
        a, b = b, a % b
    end
    return a
end

-- pktgen's range mode steps every field on every packet, independently: source address
-- and source port cycle together, so n addresses x m ports give n*m distinct flows only
-- when gcd(n, m) = 1. Split `flows` into such a pair, addresses as many as possible up to
-- sqrt(flows), ports at most `max_ports`.
function M.split_flows(flows, max_ports)
    local best = nil
    for ips = math.floor(math.sqrt(flows)), 1, -1 do
        if flows % ips == 0 then
            local ports = flows // ips
            if ports <= max_ports and gcd(ips, ports) == 1 then
                best = { ips = ips, ports = ports }
                break
            end
        end
    end
    if best == nil then
        -- No coprime factor pair fits the port span (e.g. a large power of two).
        error(string.format("TANDEM_PKTGEN_FLOWS=%d cannot be split into coprime address and port counts (ports <= %d); pick a nearby number",
            flows, max_ports))
    end
    return best
end

-- pktgen 23.06.1 builds range-mode frames once per buffer of its range pool, not per
-- frame sent: a transmit queue's pool holds (1024 + 2048) * 8 = 24576 buffers, so range mode
-- sends at most that many distinct flows; more are configured but never sent.
M.RANGE_BUFFERS = 24576

-- Common parameters of every script.
function M.params()
    local p = {}
    p.out = M.env("TANDEM_PKTGEN_OUT", "pktgen-results.txt")
    p.duration = M.env_int("TANDEM_PKTGEN_DURATION", 10, 1, 3600)
    p.tx = M.env_int("TANDEM_PKTGEN_TX_PORT", 0, 0, 31)
    p.rx = M.env_int("TANDEM_PKTGEN_RX_PORT", 1, 0, 31)
    p.dst_mac = M.env("TANDEM_PKTGEN_DST_MAC", "02:00:00:00:20:00")
    p.vip = M.env("TANDEM_PKTGEN_VIP", "198.18.0.100")
    p.vport = M.env_int("TANDEM_PKTGEN_VPORT", 80, 1, 65535)
    p.src_ip = M.env("TANDEM_PKTGEN_SRC_IP", "198.18.1.1")
    p.src_port = M.env_int("TANDEM_PKTGEN_SRC_PORT", 1024, 1, 65535)
    p.replica_ip = M.env("TANDEM_PKTGEN_REPLICA_IP", "198.19.0.11")
    M.check_bench_range("TANDEM_PKTGEN_VIP", p.vip, 1)
    M.check_bench_range("TANDEM_PKTGEN_REPLICA_IP", p.replica_ip, 1)
    return p
end

-- Waits until both ports' links are up (a memif link is up once its peer has connected).
-- 23.06's transmit path retries a flush until the frames are taken: a port that sends while
-- its memif is not connected hangs pktgen's lcore (and pktgen.quit() with it).
function M.wait_links(p, seconds)
    for _ = 1, seconds * 10 do
        local st = pktgen.linkState("all")
        local tx, rx = tostring(st[p.tx]), tostring(st[p.rx])
        if tx:sub(1, 3) == "<UP" and rx:sub(1, 3) == "<UP" then
            return
        end
        pktgen.delay(100)
    end
    error(string.format("links not up after %d s", seconds))
end

-- Single-packet settings both ports need: port tx sends to the DUT with a source address
-- from the client range; port rx takes the replica's address, so it answers the DUT's
-- ARP for it (Tandem DUT) and is a plausible receiver otherwise.
function M.setup_ports(p)
    pktgen.screen("off")
    M.wait_links(p, 60)
    pktgen.set_mac(tostring(p.tx), "dst", p.dst_mac)
    pktgen.set_ipaddr(tostring(p.tx), "dst", p.vip)
    pktgen.set_ipaddr(tostring(p.tx), "src", p.src_ip .. "/16")
    pktgen.set_ipaddr(tostring(p.rx), "src", p.replica_ip .. "/24")
    pktgen.set_ipaddr(tostring(p.rx), "dst", p.src_ip)
    pktgen.set_proto(tostring(p.tx), "tcp")
    pktgen.set_type(tostring(p.tx), "ipv4")
    pktgen.process("all", "on")
    -- A gratuitous ARP from the replica's address: a DUT that resolves the replica (Tandem)
    -- learns its MAC from it, without depending on its own ARP request getting through.
    -- pktgen queues that frame in its transmit buffer, flushed only when the port stops
    -- sending: send one ordinary frame from that port to get it out.
    local r = tostring(p.rx)
    pktgen.send_arp(r, "g")
    pktgen.set(r, "count", 1)
    pktgen.start(r)
    pktgen.delay(200)
    pktgen.stop(r)
    pktgen.delay(200)
end

-- Runs pktgen command-language lines (what its prompt takes) from a temporary command file:
-- for settings that 23.06's Lua API lacks or gets wrong. pktgen.run wants a third, unused
-- argument.
function M.run_cmds(lines)
    local path = os.tmpname() .. ".pkt"
    local f = assert(io.open(path, "w"))
    for _, l in ipairs(lines) do
        f:write(l, "\n")
    end
    f:close()
    pktgen.run("cmd", path, "")
    os.remove(path)
end

local function port_totals(pid)
    local st = pktgen.portStats(tostring(pid), "port")[pid]
    return st
end

-- Clears the counters, sends for `duration` seconds on port tx, stops, lets the DUT drain
-- and pktgen's once-a-second statistics catch up, and returns the totals plus the
-- per-second receive rates seen while sending.
function M.measure(p)
    pktgen.clr()
    pktgen.delay(1500)
    local rx_rates = {}
    local txs = tostring(p.tx)
    pktgen.start(txs)
    for _ = 1, p.duration do
        pktgen.delay(1000)
        local r = pktgen.portStats(tostring(p.rx), "rate")[p.rx]
        rx_rates[#rx_rates + 1] = r.ipackets
    end
    pktgen.stop(txs)
    -- Frames still in the DUT arrive within microseconds, but the counters pktgen reports
    -- are refreshed by its statistics thread, nominally once a second and later on a
    -- loaded machine: read until two reads a second apart agree (at most 30 s).
    pktgen.delay(1500)
    local t, r = port_totals(p.tx), port_totals(p.rx)
    for _ = 1, 30 do
        pktgen.delay(1000)
        local t2, r2 = port_totals(p.tx), port_totals(p.rx)
        local same = t2.opackets == t.opackets and r2.ipackets == r.ipackets
        t, r = t2, r2
        if same then
            break
        end
    end
    local m = {
        tx_pkts = t.opackets,
        tx_bytes = t.obytes,
        rx_pkts = r.ipackets,
        rx_bytes = r.ibytes,
        tx_oerrors = t.oerrors,
        rx_imissed = r.imissed,
        rx_nombuf = r.rx_nombuf,
    }
    -- The first second holds the start; the peak of the rest is the steady rate.
    local peak = 0
    for i = 2, #rx_rates do
        if rx_rates[i] > peak then
            peak = rx_rates[i]
        end
    end
    m.rx_peak_pps = peak
    return m
end

-- Derived figures. Gbps counts frame bytes as the ports count them (no preamble, gap or
-- CRC); Mpps and Gbps are averages over the whole sending time.
function M.derive(p, m)
    local d = p.duration
    return {
        tx_mpps = m.tx_pkts / d / 1e6,
        rx_mpps = m.rx_pkts / d / 1e6,
        tx_gbps = m.tx_bytes * 8 / d / 1e9,
        rx_gbps = m.rx_bytes * 8 / d / 1e9,
        drops = m.tx_pkts - m.rx_pkts,
        drop_pct = (m.tx_pkts > 0) and (100.0 * (m.tx_pkts - m.rx_pkts) / m.tx_pkts) or 0.0,
        rx_peak_mpps = m.rx_peak_pps / 1e6,
    }
end

-- Writes `pairs_list` ({ {key, value}, ... }, in order) to p.out, one key=value a line.
function M.write(p, pairs_list)
    local f, err = io.open(p.out, "w")
    if f == nil then
        error("cannot write results to " .. p.out .. ": " .. tostring(err))
    end
    for _, kv in ipairs(pairs_list) do
        local v = kv[2]
        if math.type(v) == "float" then
            v = string.format("%.4f", v)
        end
        f:write(kv[1], "=", tostring(v), "\n")
    end
    f:close()
end

-- The standard result lines every script writes, after its own leading ones. A run that
-- sent or received nothing is not a result: its status says so.
function M.standard_lines(p, m, lines)
    local d = M.derive(p, m)
    if m.tx_pkts == 0 or m.rx_pkts == 0 then
        for _, kv in ipairs(lines) do
            if kv[1] == "status" then
                kv[2] = (m.tx_pkts == 0) and "nothing_sent" or "nothing_received"
            end
        end
    end
    local add = function(k, v) lines[#lines + 1] = { k, v } end
    add("duration_s", p.duration)
    add("tx_pkts", m.tx_pkts)
    add("rx_pkts", m.rx_pkts)
    add("drops", d.drops)
    add("drop_pct", d.drop_pct)
    add("tx_mpps", d.tx_mpps)
    add("rx_mpps", d.rx_mpps)
    add("rx_peak_mpps", d.rx_peak_mpps)
    add("tx_gbps", d.tx_gbps)
    add("rx_gbps", d.rx_gbps)
    add("tx_bytes", m.tx_bytes)
    add("rx_bytes", m.rx_bytes)
    add("tx_oerrors", m.tx_oerrors)
    add("rx_imissed", m.rx_imissed)
    add("rx_nombuf", m.rx_nombuf)
    return lines
end

-- Runs `body` and always ends pktgen: a failed script writes status=error and the reason
-- to the results file instead of leaving pktgen waiting at its prompt.
function M.run(name, body)
    local p
    local ok, err = pcall(function()
        p = M.params()
        body(p)
    end)
    if not ok then
        local out = M.env("TANDEM_PKTGEN_OUT", "pktgen-results.txt")
        local f = io.open(out, "w")
        if f ~= nil then
            f:write("script=", name, "\n", "status=error\n", "error=", tostring(err):gsub("\n", " "), "\n")
            f:close()
        end
        pcall(pktgen.stop, "all")
    end
    pktgen.quit()
end

return M
