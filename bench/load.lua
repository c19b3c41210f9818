-- wrk script for every scenario of bench/run.sh, chosen by BENCH_SCENARIO.
--
-- Environment: BENCH_SCENARIO, BENCH_TOKEN (a bearer token with crm:read and
-- crm:write), BENCH_CUSTOMERS (how many customers bench/seed.sql made),
-- BENCH_FRESH_SEGMENT (the segment the `fresh` scenario lists),
-- BENCH_RUN (a number, different for every wrk invocation against one
-- database, that keeps created mobiles and e-mails unique).
--
-- Ids, mobiles and names follow the formulas of bench/seed.sql; keep the two
-- in step. Each wrk thread has its own Lua state: `setup` hands each one a
-- number, so generated values never clash between threads.

local scenario = os.getenv("BENCH_SCENARIO") or "get_customer"
local token = os.getenv("BENCH_TOKEN") or ""
local customers = tonumber(os.getenv("BENCH_CUSTOMERS") or "1000000")
local run_id = tonumber(os.getenv("BENCH_RUN") or "0") % 100000

-- The same lists as bench/seed.sql.
local families = {"Wang","Li","Zhang","Liu","Chen","Yang","Huang","Zhao","Wu","Zhou",
    "Xu","Sun","Ma","Zhu","Hu","Guo","He","Gao","Lin","Luo",
    "Zheng","Liang","Xie","Song","Tang","Han","Feng","Deng","Cao","Peng",
    "Zeng","Xiao","Tian","Dong","Pan","Yuan","Cai","Jiang","Yu","Du",
    "Ye","Cheng","Wei","Su","Lu","Ding","Ren","Shen","Yao","Jin"}
local givens = {"Wei","Fang","Na","Xiuying","Min","Jing","Li","Qiang","Lei","Jun",
    "Yang","Yong","Yan","Jie","Juan","Tao","Ming","Chao","Xiulan","Xia",
    "Ping","Gang","Gui","Hua","Fei","Bin","Hui","Yu","Hong","Xin",
    "Lin","Ling","Dan","Ting","Hao","Kai","Rui","Xue","Yun","Zhen",
    "Mei","Qing","Bo","Chen","Feng","Liang","Ning","Peng","Shan","Wen",
    "Xiang","Yi","Zhi","Jian","Long","Hai","Yue","Ying","Lan","Qian"}

-- The segment with 1,000 members, the one with the most (50,000 at a
-- million customers), and the empty one the add scenario writes to.
local SEGMENT_1000 = 2
local SEGMENT_LARGEST = 100
local SEGMENT_ADD = 101

wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json"

local next_thread = 1

function setup(thread)
    thread:set("thread_no", next_thread)
    next_thread = next_thread + 1
end

-- wrk.format uses the given headers instead of wrk.headers, so bodies
-- carry a full set of their own.
local json_headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/json",
    ["Content-Type"] = "application/json",
}
local fixed -- the request, for scenarios that send the same one every time
local seq = 0

local function random_id()
    return math.random(1, customers)
end

-- Customer i's mobile as seeded ('' for every tenth customer).
local function mobile_of(i)
    if i % 10 == 0 then
        return ""
    end
    return "1" .. tostring(3 + i % 7) .. string.format("%09d", (i * 48271) % 1000000000)
end

function init(args)
    local n = thread_no or 1
    math.randomseed(os.time() * 1000 + n * 7919 + run_id)
    -- LuaJIT's first numbers after seeding are poorly mixed.
    for _ = 1, 10 do
        math.random()
    end
    local paths = {
        list_page1 = "/api/crm/customer/?page=1",
        list_page1000 = "/api/crm/customer/?page=1000",
        list_segment = "/api/crm/customer/?segment=" .. SEGMENT_LARGEST,
        get_segment = "/api/crm/segment/" .. SEGMENT_1000 .. "/",
        fresh = "/api/crm/customer/?segment=" .. (os.getenv("BENCH_FRESH_SEGMENT") or ""),
    }
    if paths[scenario] then
        fixed = wrk.format("GET", paths[scenario])
    end
end

local generators = {}

generators.get_customer = function()
    return wrk.format("GET", "/api/crm/customer/" .. random_id() .. "/")
end

-- A 7-digit piece of an existing customer's mobile: matches that customer
-- and the few others whose mobile or e-mail contains the same digits.
generators.list_search_mobile = function()
    local i = random_id()
    while i % 10 == 0 do
        i = random_id()
    end
    local fragment = string.sub(mobile_of(i), 4, 10)
    return wrk.format("GET", "/api/crm/customer/?search=" .. fragment)
end

-- A full name ("wang xiuying"): about one customer in 3,000 has each.
generators.list_search_name = function()
    local name = families[math.random(1, #families)] .. "%20" .. givens[math.random(1, #givens)]
    return wrk.format("GET", "/api/crm/customer/?search=" .. string.lower(name))
end

generators.create = function()
    seq = seq + 1
    local n = thread_no or 1
    -- '+' and 15 digits: seeded mobiles have no '+', so these never clash.
    local mobile = string.format("+9%05d%02d%07d", run_id, n, seq)
    local body = string.format(
        '{"mobile": "%s", "full_name": "Bench Customer %d-%d", "gender": "female", '
            .. '"email": "bench-%d-%d-%d@example.net", "birthday": "1990-05-17", '
            .. '"note": "created by bench/run.sh", "accepts_marketing": true, '
            .. '"tags": ["bench", "new"], "profile": {"source_name": "bench"}}',
        mobile, n, seq, run_id, n, seq)
    return wrk.format("POST", "/api/crm/customer/", json_headers, body)
end

-- The same create, each with an Idempotency-Key of its own: what a client
-- that retries safely sends (none of these is a replay).
generators.create_idempotent = function()
    local request = generators.create()
    local n = thread_no or 1
    local headers = {}
    for k, v in pairs(json_headers) do
        headers[k] = v
    end
    headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", run_id, n, seq)
    local body = string.match(request, "\r\n\r\n(.*)$")
    return wrk.format("POST", "/api/crm/customer/", headers, body)
end

generators.update = function()
    seq = seq + 1
    local body = string.format(
        '{"note": "updated by bench/run.sh #%d", "accepts_marketing": %s, '
            .. '"tags": ["bench", "updated"]}',
        seq, (seq % 2 == 0) and "true" or "false")
    return wrk.format("PUT", "/api/crm/customer/" .. random_id() .. "/", json_headers, body)
end

-- 100 customers out of a fixed pool of 300 (ids 1 + 997 k), sorted so that
-- concurrent inserts of the same memberships lock in the same order. The
-- segment therefore stays at 300 members at most, and its answer (the
-- segment with its members) stays the same size through the run.
generators.segment_add = function()
    local start = math.random(0, 199)
    local ids = {}
    for k = 0, 99 do
        ids[#ids + 1] = 1 + ((start + k) * 997) % customers
    end
    table.sort(ids)
    local items = {}
    for _, id in ipairs(ids) do
        items[#items + 1] = '{"customer_id": ' .. id .. '}'
    end
    local body = "[" .. table.concat(items, ", ") .. "]"
    return wrk.format("POST", "/api/crm/segment/" .. SEGMENT_ADD .. "/segment_customer/",
        json_headers, body)
end

local generate = generators[scenario]
if not generate and not ({list_page1 = 1, list_page1000 = 1, list_segment = 1,
                          get_segment = 1, fresh = 1})[scenario] then
    error("bench/load.lua: unknown BENCH_SCENARIO " .. scenario)
end

function request()
    if fixed then
        return fixed
    end
    return generate()
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "errors_status": %d, '
            .. '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_timeout": %d, '
            .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
        summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read,
        e.write, e.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, latency.mean))
end
