// What an API consumer does with openapi-fetch and the types openapi-typescript
// generates from the served OpenAPI document (generated/api.d.ts), against a
// running server. scripts/clients.sh type-checks it (`tsc`), then runs it:
//
//   node build/scenario.js BASE_URL CLIENT_ID CLIENT_SECRET

import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api.js";

type Customer = components["schemas"]["Customer"];
type CustomerCreate = components["schemas"]["CustomerCreate"];

function check(condition: boolean, message: string): asserts condition {
    if (!condition) {
        throw new Error(`typescript client scenario: ${message}`);
    }
}

function form(body: Record<string, string>): string {
    return new URLSearchParams(body).toString();
}

function argument(index: number): string {
    const value = process.argv[2 + index];
    check(value !== undefined, "usage: node build/scenario.js BASE_URL CLIENT_ID CLIENT_SECRET");
    return value;
}

const [base, clientId, clientSecret] = [argument(0), argument(1), argument(2)];

const formHeaders = { "Content-Type": "application/x-www-form-urlencoded" };

async function token(): Promise<string> {
    const anonymous = createClient<paths>({ baseUrl: base });
    // A wrong secret: the OAuth error says why in its description.
    const refused = await anonymous.POST("/oauth/token/", {
        body: { grant_type: "client_credentials", client_id: clientId, client_secret: "wrong" },
        bodySerializer: form,
        headers: formHeaders,
    });
    check(refused.response.status === 401, `a wrong secret is a 401: ${refused.response.status}`);
    const error = refused.error;
    check(error !== undefined && "error" in error, `an OAuth error: ${JSON.stringify(error)}`);
    check(error.error === "invalid_client", `invalid_client: ${JSON.stringify(error)}`);
    check(error.error_description !== "", "the OAuth error has a description");
    // A stray bearer header (a client configured with one for every call)
    // does not get in the way of the form credentials.
    const issued = await anonymous.POST("/oauth/token/", {
        body: {
            grant_type: "client_credentials",
            client_id: clientId,
            client_secret: clientSecret,
            scope: "crm:read crm:write",
        },
        bodySerializer: form,
        headers: { ...formHeaders, Authorization: "Bearer stray" },
    });
    check(issued.data !== undefined, `a token: ${issued.response.status} ${JSON.stringify(issued.error)}`);
    return issued.data.access_token;
}

async function main(): Promise<void> {
    const api = createClient<paths>({
        baseUrl: base,
        headers: { Authorization: `Bearer ${await token()}` },
    });
    const run = Math.random().toString(36).slice(2, 10);

    async function create(body: CustomerCreate): Promise<Customer> {
        const { data, response } = await api.POST("/api/crm/customer/", { body });
        check(response.status === 201 && data !== undefined, `create: ${response.status}`);
        return data;
    }

    // Create and get.
    const customer = await create({
        full_name: `TypeScript ${run}`,
        email: `ts-${run}@example.com`,
        gender: "female",
        accepts_marketing: true,
        tags: ["vip"],
    });
    const fetched = await api.GET("/api/crm/customer/{id}/", { params: { path: { id: customer.id } } });
    check(fetched.data !== undefined, `get: ${fetched.response.status}`);
    check(JSON.stringify(fetched.data) === JSON.stringify(customer), "get returns what create returned");
    const level: string | null = fetched.data.level;
    check(level === null, "level is null");

    // PATCH one field: nothing else changes (the body type requires nothing).
    const patched = await api.PATCH("/api/crm/customer/{id}/", {
        params: { path: { id: customer.id } },
        body: { note: "called back" },
    });
    check(patched.data !== undefined, `patch: ${patched.response.status}`);
    check(patched.data.note === "called back", "the note changed");
    check(patched.data.accepts_marketing === true, "marketing consent kept");
    check(patched.data.gender === "female", "gender kept");
    const rest = (c: Customer) => JSON.stringify({ ...c, note: undefined, updated_at: undefined });
    check(rest(patched.data) === rest(customer), "only the note changed");

    // An array filter (sent as id__in=1&id__in=2&...): every id comes back.
    const others = [
        (await create({ full_name: `TypeScript ${run} 1` })).id,
        (await create({ full_name: `TypeScript ${run} 2` })).id,
    ];
    const ids = [customer.id, ...others].sort((a, b) => a - b);
    const page = await api.GET("/api/crm/customer/", {
        params: { query: { id__in: ids, ordering: "id", page_size: 100 } },
    });
    check(page.data !== undefined, `list: ${page.response.status} ${JSON.stringify(page.error)}`);
    const listed = page.data.results.map((c) => c.id);
    check(JSON.stringify(listed) === JSON.stringify(ids), `id__in=${ids} listed ${listed}`);
    check(page.data.count === ids.length, `count ${page.data.count}`);

    // A segment: add two customers, remove both with the array form.
    const segment = await api.POST("/api/crm/segment/", { body: { title: `TypeScript ${run}` } });
    check(segment.data !== undefined, `segment: ${segment.response.status}`);
    const path = { id: segment.data.id };
    const added = await api.POST("/api/crm/segment/{id}/segment_customer/", {
        params: { path },
        body: others.map((id) => ({ customer_id: id })),
    });
    check(added.data !== undefined, `add: ${added.response.status}`);
    const members = added.data.customers.map((c) => c.id).sort((a, b) => a - b);
    check(JSON.stringify(members) === JSON.stringify(others), `both added: ${members}`);
    const removed = await api.DELETE("/api/crm/segment/{id}/segment_customer/", {
        params: { path, query: { customer__in: others } },
    });
    check(removed.data !== undefined, `remove: ${removed.response.status} ${JSON.stringify(removed.error)}`);
    check(removed.data.customers.length === 0, `both removed: ${removed.data.customers.map((c) => c.id)}`);
    console.log("typescript client scenario: ok");
}

main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
});
