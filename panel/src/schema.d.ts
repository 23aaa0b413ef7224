// Generated from docs/openapi.json by `npm run gen:types` (scripts/gen-types.mjs): do not edit.

export interface paths {
    "/v1/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The audit log, newest first: everything (admins), or your actions and those on your functions and account */
        get: operations["get_v1_audit"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/providers": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** How one may sign in: passwords, OpenID providers */
        get: operations["get_v1_auth_providers"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/session": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A fresh short-lived token of this browser's session (its cookie) */
        post: operations["post_v1_auth_session"];
        /** Log out: end this browser's session */
        delete: operations["delete_v1_auth_session"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/sso/exchange": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Exchange a loopback sign-in's code, with its secret, for a token (olinctl) */
        post: operations["post_v1_auth_sso_exchange"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/sso/{provider}/callback": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Where the OpenID provider sends the browser back (the redirect URI to register) */
        get: operations["get_v1_auth_sso__provider__callback"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/sso/{provider}/device": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Start a device sign-in (olinctl login --sso) */
        post: operations["post_v1_auth_sso__provider__device"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/sso/{provider}/device/token": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Poll a device sign-in: a token once the person has signed in */
        post: operations["post_v1_auth_sso__provider__device_token"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/auth/sso/{provider}/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Sign in through an OpenID provider (a browser is redirected there) */
        get: operations["get_v1_auth_sso__provider__login"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/executions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One invocation by id */
        get: operations["get_v1_executions__id_"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List your functions, paginated by name */
        get: operations["get_v1_functions"];
        put?: never;
        /** Create a function */
        post: operations["post_v1_functions"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Show a function */
        get: operations["get_v1_functions__name_"];
        put?: never;
        post?: never;
        /** Delete a function and its route (modules are kept) */
        delete: operations["delete_v1_functions__name_"];
        options?: never;
        head?: never;
        /** Change visibility, limits, egress allow-list, async attempts, rate or concurrency limit */
        patch: operations["patch_v1_functions__name_"];
        trace?: never;
    };
    "/v1/functions/{name}/deployments": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Deployment history, newest first */
        get: operations["get_v1_functions__name__deployments"];
        put?: never;
        /** Deploy a version, optionally with a canary share for a second */
        post: operations["post_v1_functions__name__deployments"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/env": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Environment values (secrets as null) */
        get: operations["get_v1_functions__name__env"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/env/{var}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Set an environment value */
        put: operations["put_v1_functions__name__env__var_"];
        post?: never;
        /** Unset an environment value */
        delete: operations["delete_v1_functions__name__env__var_"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/executions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Executions, newest first; filters outcome, since, until; paging limit, after */
        get: operations["get_v1_functions__name__executions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/invoke": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Call the function through the gateway and return its answer (the panel's try-it) */
        post: operations["post_v1_functions__name__invoke"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List invoke keys */
        get: operations["get_v1_functions__name__keys"];
        put?: never;
        /** Create an invoke key (shown once) */
        post: operations["post_v1_functions__name__keys"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/keys/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke an invoke key */
        delete: operations["delete_v1_functions__name__keys__id_"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/rollback": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Re-point to an earlier version (default: the previous one) */
        post: operations["post_v1_functions__name__rollback"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Usage of a function over since..until */
        get: operations["get_v1_functions__name__usage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/usage/series": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Usage of a function over time in equal buckets (since, until: default the last 24 hours; buckets: default 48) */
        get: operations["get_v1_functions__name__usage_series"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/functions/{name}/versions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List versions, newest first */
        get: operations["get_v1_functions__name__versions"];
        put?: never;
        /** Upload a module (application/wasm, or multipart field `module`); validated, stored by sha256 */
        post: operations["post_v1_functions__name__versions"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Who the token belongs to */
        get: operations["get_v1_me"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/me/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Change your password; revokes your other tokens */
        put: operations["put_v1_me_password"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This document */
        get: operations["get_v1_openapi_json"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List your tokens (never their secrets) */
        get: operations["get_v1_tokens"];
        put?: never;
        /** Log in: username and password for a bearer token */
        post: operations["post_v1_tokens"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tokens/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke a token at once */
        delete: operations["delete_v1_tokens__id_"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Usage of all your functions over since..until */
        get: operations["get_v1_usage"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List users (admin), paginated */
        get: operations["get_v1_users"];
        put?: never;
        /** Create a user (admin) */
        post: operations["post_v1_users"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Delete a user (admin), with their functions only if asked */
        delete: operations["delete_v1_users__name_"];
        options?: never;
        head?: never;
        /** Set a user's quotas, role, or disable them (admin) */
        patch: operations["patch_v1_users__name_"];
        trace?: never;
    };
    "/v1/users/{name}/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Reset a user's password (admin); revokes their tokens */
        put: operations["put_v1_users__name__password"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/users/{name}/tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List a user's tokens (admin) */
        get: operations["get_v1_users__name__tokens"];
        put?: never;
        post?: never;
        /** Revoke all of a user's tokens (admin) */
        delete: operations["delete_v1_users__name__tokens"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /**
         * @description The guest ABI a module uses, from its imports.
         * @enum {string}
         */
        Abi: "olin" | "wasi_p1";
        /** @description The active deployment of a function. */
        ActiveDeployment: {
            /**
             * Format: int32
             * @description The canary's share of the calls, in percent, during a canary.
             */
            canary_percent: number | null;
            /**
             * Format: int32
             * @description The canary version, during a canary.
             */
            canary_version: number | null;
            /** @description The deployment's id. */
            id: string;
            /**
             * Format: int32
             * @description The version serving the calls (all of them but the canary's share).
             */
            version: number;
        };
        /** @description One entry of the audit log. */
        AuditEntry: {
            /**
             * @description What: `login`, `function_created`, `deploy`, `user_updated`, ...;
             *     for a refused change, its method and route (`DELETE /v1/users/{name}`).
             */
            action: string;
            /**
             * @description Who acted: their username at the time; null for an anonymous
             *     caller (a failed login).
             */
            actor: string | null;
            /**
             * Format: date-time
             * @description When.
             */
            at: string;
            /** @description What changed (never a secret or password): an object. */
            detail: Record<string, never>;
            /** @description Its id (time-ordered). */
            id: string;
            /** @description `ok`, or the HTTP status of a refused change (`403`, `409`, ...). */
            outcome: string;
            /**
             * @description The client's address, as control saw it (null for entries from
             *     before addresses were recorded).
             */
            source: string | null;
            /**
             * @description On what: a function's or user's name, a token id; for a refused
             *     change, the route's parameters joined with `/`.
             */
            target: string;
        };
        /** @description Audit entries, newest first. */
        AuditList: {
            /** @description This page's items. */
            items: components["schemas"]["AuditEntry"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description A second version taking a share of the calls. */
        Canary: {
            /**
             * Format: int32
             * @description Its share of the calls, in percent.
             */
            percent: number;
            /**
             * Format: int32
             * @description The canary version's number.
             */
            version: number;
        };
        /** @description A deployment. */
        Deployment: {
            /** @description Whether it serves now. */
            active: boolean;
            /**
             * Format: int32
             * @description The canary's share in percent (0 without one).
             */
            canary_percent: number;
            /**
             * Format: int32
             * @description Its canary version, if it had one.
             */
            canary_version: number | null;
            /**
             * Format: date-time
             * @description When.
             */
            created_at: string;
            /** @description Its id. */
            id: string;
            /** @description How it came about. */
            kind: components["schemas"]["DeploymentKind"];
            /**
             * Format: int32
             * @description The version it serves.
             */
            version: number;
        };
        /**
         * @description How a deployment came about.
         * @enum {string}
         */
        DeploymentKind: "deploy" | "rollback";
        /** @description Deployments, newest first. */
        DeploymentList: {
            /** @description This page's items. */
            items: components["schemas"]["Deployment"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description One poll of a device sign-in. */
        DevicePoll: {
            /** @description The `device_code` of [`DeviceStart`]. */
            device_code: string;
        };
        /**
         * @description A device sign-in started: show the person `verification_uri` and
         *     `user_code`, then poll `POST /v1/auth/sso/{provider}/device/token` with
         *     `device_code` every `interval` seconds.
         */
        DeviceStart: {
            /** @description The secret the poller presents; never shown to the person. */
            device_code: string;
            /**
             * Format: int64
             * @description Seconds until `device_code` expires.
             */
            expires_in: number;
            /**
             * Format: int64
             * @description Seconds to wait between polls.
             */
            interval: number;
            /** @description The code the person types at `verification_uri`. */
            user_code: string;
            /** @description Where the person signs in. */
            verification_uri: string;
            /** @description `verification_uri` with the code filled in, if the provider gives one. */
            verification_uri_complete?: string | null;
        };
        /**
         * @description One egress allow-list entry: a host name, `*.domain`, with an optional
         *     `:port` (IP literals and `*` only where the operator allows them).
         */
        EgressEntry: string;
        /** @description Values by name. */
        EnvList: {
            /** @description This page's items. */
            items: components["schemas"]["EnvValue"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description One value (a secret's is never shown again). */
        EnvValue: {
            /** @description The variable's name. */
            name: string;
            /** @description Whether it is a secret. */
            secret: boolean;
            /**
             * Format: date-time
             * @description When it was last set.
             */
            updated_at: string;
            /** @description The value; null for a secret. */
            value: string | null;
        };
        /** @description `{"error": {"code", "message"}}`. */
        Error: {
            /** @description What went wrong. */
            error: components["schemas"]["ErrorDetail"];
        };
        /** @description A machine-readable code and a message fit to show a person. */
        ErrorDetail: {
            /** @description `bad_request`, `unauthorized`, `not_found`, `conflict`, ... */
            code: string;
            /** @description What went wrong and, where there is one, what to do about it. */
            message: string;
        };
        /** @description One invocation. */
        Execution: {
            /** @description Whether it was an async call. */
            async: boolean;
            /**
             * Format: int32
             * @description How many times it ran: 1, or more when delivery ran it again (a
             *     worker lost, a hung worker's call taken over); the record above is
             *     its first run, the answer its caller got.
             */
            attempts?: number;
            /** @description The deployment that served it. */
            deployment_id: string;
            /** @description What went wrong, if something did. */
            error: string;
            /**
             * Format: int32
             * @description The guest's exit code.
             */
            exit_code: number;
            /**
             * Format: date-time
             * @description When it finished.
             */
            finished_at: string;
            /** @description The function's name. */
            function: string;
            /** @description The response headers the function set. */
            headers: components["schemas"]["Header"][];
            /** @description Its id (UUIDv7: time-ordered). */
            invocation_id: string;
            /** @description The request's method. */
            method: string;
            /** @description The module that ran. */
            module_sha256: string;
            /** @description `OK`, `GUEST_ERROR`, `TIMEOUT`, `FUEL_EXHAUSTED`, ... */
            outcome: string;
            /** @description The request's path after the function's prefix. */
            path: string;
            /** @description The runs after the first, oldest first. */
            reruns?: components["schemas"]["Rerun"][];
            /**
             * Format: date-time
             * @description When it started.
             */
            started_at: string;
            /**
             * Format: int32
             * @description The HTTP status answered.
             */
            status: number;
            /** @description The end of what the guest wrote to stderr. */
            stderr_tail: string;
            /** @description What it used. */
            usage: components["schemas"]["ExecutionUsage"];
            /** @description The worker that ran it. */
            worker_id: string;
        };
        /** @description Executions, newest first. */
        ExecutionList: {
            /** @description This page's items. */
            items: components["schemas"]["Execution"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description What one call used. */
        ExecutionUsage: {
            /**
             * Format: int64
             * @description Request body bytes.
             */
            bytes_in: number;
            /**
             * Format: int64
             * @description Response bytes.
             */
            bytes_out: number;
            /**
             * Format: int64
             * @description Fuel burnt.
             */
            fuel: number;
            /**
             * Format: int64
             * @description Largest linear memory.
             */
            peak_memory_bytes: number;
            /**
             * Format: int64
             * @description Wall time, in microseconds.
             */
            wall_us: number;
        };
        /** @description A function. */
        Function: {
            /**
             * Format: int32
             * @description Attempts of an async call; null: the server's default.
             */
            async_max_attempts: number | null;
            /**
             * Format: date-time
             * @description When it was created.
             */
            created_at: string;
            deployment: null | components["schemas"]["ActiveDeployment"];
            /** @description The hosts its guests may reach. */
            egress_allow: string[];
            /** @description Its id. */
            id: string;
            /** @description Its calls of the last hour. */
            last_hour: components["schemas"]["LastHour"];
            /** @description Its own limits. */
            limits: components["schemas"]["Limits"];
            /**
             * Format: int32
             * @description Most calls at once; null: none.
             */
            max_concurrency: number | null;
            /** @description Its name (a DNS label). */
            name: string;
            rate_limit: null | components["schemas"]["RateLimit"];
            /**
             * Format: date-time
             * @description When it last changed.
             */
            updated_at: string;
            /** @description Where it is called. */
            url: string;
            /** @description Who may call it. */
            visibility: components["schemas"]["Visibility"];
        };
        /** @description Functions by name. */
        FunctionList: {
            /** @description This page's items. */
            items: components["schemas"]["Function"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /**
         * @description `PATCH /v1/functions/{name}`: what is present changes; the route is
         *     republished, so the next call runs with it.
         */
        FunctionPatch: {
            /**
             * Format: int32
             * @description Attempts of an async call.
             */
            async_max_attempts?: number | null;
            /** @description The hosts its guests may reach (replaces the list). */
            egress_allow?: components["schemas"]["EgressEntry"][] | null;
            limits?: null | components["schemas"]["LimitsPatch"];
            /**
             * Format: int32
             * @description Most calls at once; 0 clears the limit (the operator's maximum, if
             *     any, applies).
             */
            max_concurrency?: number | null;
            rate_limit?: null | components["schemas"]["RatePatch"];
            visibility?: null | components["schemas"]["Visibility"];
        };
        /**
         * @description One HTTP header as the API shows it, in the order it was sent; the value
         *     decoded as UTF-8 (lossily: a header value is bytes).
         */
        Header: {
            /** @description Its name. */
            name: string;
            /** @description Its value. */
            value: string;
        };
        /** @description A header to send. */
        HeaderInput: {
            /** @description Its name. */
            name: string;
            /** @description Its value. */
            value: string;
        };
        /** @description An invoke key (the key itself only in the answer that created it). */
        InvokeKey: {
            /**
             * Format: date-time
             * @description When it was created.
             */
            created_at: string;
            /** @description Its id. */
            id: string;
            /** @description The key: shown once, when it is created. */
            key?: string | null;
            /** @description A label for people. */
            name: string;
            /** @description Its first characters, to recognise it by. */
            prefix: string;
            /**
             * Format: date-time
             * @description When it was revoked, if it was.
             */
            revoked_at: string | null;
        };
        /** @description Keys, oldest first. */
        InvokeKeyList: {
            /** @description This page's items. */
            items: components["schemas"]["InvokeKey"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description Calls that started in the last hour, and how many of them failed. */
        LastHour: {
            /**
             * Format: int64
             * @description Calls.
             */
            calls: number;
            /**
             * Format: int64
             * @description Calls that did not end OK.
             */
            errors: number;
        };
        /** @description A function's own limits; null: the server's default. */
        Limits: {
            /**
             * Format: int64
             * @description Fuel (metered instructions) per call.
             */
            fuel: number | null;
            /**
             * Format: int64
             * @description Host-side buffers per call.
             */
            host_budget_bytes: number | null;
            /**
             * Format: int64
             * @description Response bytes per call.
             */
            max_output_bytes: number | null;
            /**
             * Format: int64
             * @description Linear memory per call.
             */
            memory_bytes: number | null;
            /**
             * Format: int64
             * @description Wall time per call.
             */
            wall_ms: number | null;
        };
        /**
         * @description A change of limits: a value sets it (within the server's maxima), 0
         *     clears it (the server default), absent or null leaves it.
         */
        LimitsPatch: {
            /**
             * Format: int64
             * @description Fuel per call.
             */
            fuel?: number | null;
            /**
             * Format: int64
             * @description Host-side buffers per call.
             */
            host_budget_bytes?: number | null;
            /**
             * Format: int64
             * @description Response bytes per call.
             */
            max_output_bytes?: number | null;
            /**
             * Format: int64
             * @description Memory per call.
             */
            memory_bytes?: number | null;
            /**
             * Format: int64
             * @description Wall time per call.
             */
            wall_ms?: number | null;
        };
        /** @description `POST /v1/tokens`: a username and password for a bearer token. */
        Login: {
            /**
             * Format: int64
             * @description The token's lifetime in seconds; at most the server's token TTL
             *     (the default).
             */
            expires_in?: number | null;
            /** @description Their password. */
            password: string;
            /**
             * @description A browser session instead of a long-lived token: the answer's token
             *     lasts minutes, and an `HttpOnly` cookie buys the next ones at
             *     `POST /v1/auth/session` until the session ends (`expires_in` does
             *     not apply).
             */
            session?: boolean;
            /** @description Who logs in. */
            username: string;
        };
        /**
         * @description `POST /v1/auth/sso/exchange`: the code a loopback sign-in received, and
         *     the verifier whose SHA-256 (base64url) was its `challenge`.
         */
        LoopbackExchange: {
            /** @description The `code` the loopback address received (valid for a minute). */
            code: string;
            /** @description The secret only the program that started the sign-in knows. */
            verifier: string;
        };
        /** @description `GET /v1/me`: the user a token belongs to, and the token's id. */
        Me: components["schemas"]["User"] & {
            /** @description The id of the token of this request. */
            token_id: string;
        };
        /** @description `POST /v1/functions/{name}/deployments`. */
        NewDeployment: {
            canary?: null | components["schemas"]["Canary"];
            /**
             * Format: int32
             * @description The version number to deploy.
             */
            version: number;
        };
        /** @description `POST /v1/functions`. */
        NewFunction: {
            /** @description 1-63 of a-z, 0-9 and '-', not starting or ending with '-'. */
            name: string;
            /** @description Default: public. */
            visibility?: components["schemas"]["Visibility"];
        };
        /** @description `POST /v1/functions/{name}/keys`. */
        NewKey: {
            /** @description A label for people (where the key is used). */
            name: string;
        };
        /** @description `POST /v1/users`. */
        NewUser: {
            /** @description 8 to 1024 characters. */
            password: string;
            /** @description Default: `user`. */
            role?: components["schemas"]["Role"];
            /** @description 1-64 of `a-z 0-9 . _ -`, starting with a letter or digit. */
            username: string;
        };
        /**
         * @description `PUT /v1/me/password`: your own password; your other tokens are
         *     revoked.
         */
        PasswordChange: {
            /** @description The password now. */
            current_password: string;
            /** @description The new one: 8 to 1024 characters. */
            new_password: string;
        };
        /**
         * @description `PUT /v1/users/{name}/password` (admin): a new password; every token
         *     of the user is revoked.
         */
        PasswordReset: {
            /** @description 8 to 1024 characters. */
            password: string;
        };
        /** @description Wall-time percentiles in microseconds; null without calls. */
        Percentiles: {
            /**
             * Format: int64
             * @description The median.
             */
            p50: number | null;
            /**
             * Format: int64
             * @description The 99th percentile.
             */
            p99: number | null;
        };
        /**
         * @description Which monthly quota is spent.
         * @enum {string}
         */
        QuotaKind: "calls" | "fuel";
        /**
         * @description A change of quotas: a value sets it, 0 clears it, absent or null
         *     leaves it.
         */
        QuotaPatch: {
            /**
             * Format: int64
             * @description Calls per month.
             */
            calls_per_month?: number | null;
            /**
             * Format: int64
             * @description Fuel per month.
             */
            fuel_per_month?: number | null;
        };
        /** @description This calendar month (UTC) against the caller's quotas. */
        QuotaStanding: {
            /**
             * Format: int64
             * @description Calls so far.
             */
            calls: number;
            /**
             * Format: int64
             * @description The calls quota; null: none.
             */
            calls_per_month: number | null;
            exceeded: null | components["schemas"]["QuotaKind"];
            /**
             * Format: int64
             * @description Fuel so far.
             */
            fuel: number;
            /**
             * Format: int64
             * @description The fuel quota; null: none.
             */
            fuel_per_month: number | null;
            /** @description The month, `YYYY-MM`. */
            month: string;
            /**
             * Format: date-time
             * @description When the month ends.
             */
            resets_at: string;
        };
        /** @description Calls per second admitted across every gateway, with a burst. */
        RateLimit: {
            /**
             * Format: int32
             * @description Calls admitted at once after a quiet spell.
             */
            burst: number;
            /**
             * Format: int32
             * @description The sustained rate.
             */
            per_second: number;
        };
        /** @description A rate limit to set. */
        RatePatch: {
            /**
             * Format: int32
             * @description Calls admitted at once after a quiet spell; default: `per_second`.
             */
            burst?: number | null;
            /**
             * Format: int32
             * @description Calls per second; 0 clears the limit (the operator's maximum, if
             *     any, applies).
             */
            per_second: number;
        };
        /** @description A run of a call after its first. */
        Rerun: {
            /** @description What went wrong, if something did. */
            error: string;
            /**
             * Format: date-time
             * @description When it finished.
             */
            finished_at: string;
            /**
             * Format: int64
             * @description Fuel burnt.
             */
            fuel: number;
            /** @description Its outcome. */
            outcome: string;
            /**
             * Format: date-time
             * @description When it started.
             */
            started_at: string;
            /**
             * Format: int32
             * @description The HTTP status it answered (dropped by the gateway: the caller got
             *     the first answer).
             */
            status: number;
            /**
             * Format: int64
             * @description Wall time, in microseconds.
             */
            wall_us: number;
            /** @description The worker that ran it. */
            worker_id: string;
        };
        /** @description Tokens revoked at once. */
        Revoked: {
            /**
             * Format: int64
             * @description How many were still valid.
             */
            revoked: number;
        };
        /**
         * @description A user's role.
         * @enum {string}
         */
        Role: "admin" | "user";
        /** @description `POST /v1/functions/{name}/rollback` (the body is optional). */
        Rollback: {
            /**
             * Format: int32
             * @description The version to return to; default: the one deployed before the
             *     current one.
             */
            version?: number | null;
        };
        /** @description One bucket of a series: the calls that started in it. */
        SeriesPoint: {
            /**
             * Format: int64
             * @description Calls.
             */
            calls: number;
            /**
             * Format: int64
             * @description Calls that did not end OK.
             */
            errors: number;
            /** @description Those, by outcome. */
            errors_by_outcome: {
                [key: string]: number;
            };
            /**
             * Format: int64
             * @description Fuel burnt.
             */
            fuel: number;
            /**
             * Format: int64
             * @description Runs after a call's first.
             */
            reruns?: number;
            /**
             * Format: date-time
             * @description The bucket's start.
             */
            start: string;
            /** @description Wall-time percentiles. */
            wall_us: components["schemas"]["Percentiles"];
        };
        /** @description `PUT /v1/functions/{name}/env/{var}`. */
        SetEnv: {
            /** @description A secret is stored sealed and never shown again. */
            secret?: boolean;
            /** @description The value: at most 8192 characters, without NUL. */
            value: string;
        };
        /** @description How one may sign in to this control plane. */
        SignInMethods: {
            /** @description Whether username and password logins (`POST /v1/tokens`) are on. */
            local_passwords: boolean;
            /** @description The OpenID providers, in the operator's order. */
            providers: components["schemas"]["SsoProvider"][];
        };
        /** @description An OpenID provider users may sign in with. */
        SsoProvider: {
            /**
             * @description Whether `olinctl login --sso` may use the device flow with it (else
             *     it signs in through a browser and a loopback redirect).
             */
            device_flow: boolean;
            /** @description Its id in URLs (`/v1/auth/sso/{id}/login`). */
            id: string;
            /** @description Its name for people ("Sign in with ..."). */
            name: string;
        };
        /** @description A bearer token, shown this once. */
        Token: {
            /**
             * Format: date-time
             * @description When it stops working.
             */
            expires_at: string;
            /** @description Its id: revoke it with `DELETE /v1/tokens/{id}`. */
            id: string;
            /** @description The bearer token (a JWT). */
            token: string;
            /** @description Whose it is. */
            user: components["schemas"]["User"];
        };
        /** @description A token as listings show it (never its secret). */
        TokenInfo: {
            /**
             * Format: date-time
             * @description When it was issued.
             */
            created_at: string;
            /** @description Whether it is the token of this request. */
            current: boolean;
            /**
             * Format: date-time
             * @description When it stops working.
             */
            expires_at: string;
            /** @description Its id. */
            id: string;
            /**
             * Format: date-time
             * @description When it was revoked, if it was.
             */
            revoked_at: string | null;
        };
        /** @description The caller's tokens, newest first. */
        TokenList: {
            /** @description This page's items. */
            items: components["schemas"]["TokenInfo"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description `POST /v1/functions/{name}/invoke`. */
        TryIt: {
            /** @description The request body, as text. */
            body?: string;
            /** @description Headers to send. */
            headers?: components["schemas"]["HeaderInput"][];
            /** @description The invoke key, for a private function. */
            invoke_key?: string | null;
            /** @description Default: GET. */
            method?: components["schemas"]["TryItMethod"];
            /** @description Path after the function's prefix, with any query: `/users/7?full=1`. */
            path?: string;
        };
        /**
         * @description The methods a try-it call may use.
         * @enum {string}
         */
        TryItMethod: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS";
        /** @description What the function answered. */
        TryItResult: {
            /** @description The body, if it is UTF-8. */
            body: string | null;
            /** @description The body in base64, if it is not UTF-8. */
            body_base64: string | null;
            /** @description The response headers. */
            headers: components["schemas"]["Header"][];
            /**
             * Format: int32
             * @description The HTTP status.
             */
            status: number;
            /** @description Whether the body was cut at 1 MiB. */
            truncated: boolean;
            /** @description The URL called. */
            url: string;
        };
        /**
         * @description Usage over a window, read from per-minute rollups: the window is
         *     widened to whole minutes, and wall-time percentiles are within 19%.
         */
        Usage: {
            /**
             * Format: int64
             * @description Request bytes.
             */
            bytes_in: number;
            /**
             * Format: int64
             * @description Response bytes.
             */
            bytes_out: number;
            /**
             * Format: int64
             * @description Calls.
             */
            calls: number;
            /**
             * Format: int64
             * @description Calls that did not end OK.
             */
            errors: number;
            /** @description Those, by outcome. */
            errors_by_outcome: {
                [key: string]: number;
            };
            /**
             * Format: int64
             * @description Fuel burnt.
             */
            fuel: number;
            /** @description The function, for one function's usage. */
            function?: string | null;
            quota?: null | components["schemas"]["QuotaStanding"];
            /**
             * Format: int64
             * @description Runs of those calls after their first (at-least-once delivery):
             *     recorded, counted in the resources below, never charged to quotas.
             */
            reruns?: number;
            /**
             * Format: date-time
             * @description The window's start; null: open.
             */
            since: string | null;
            /**
             * Format: date-time
             * @description The window's end; null: open.
             */
            until: string | null;
            /** @description The user, for all of a user's functions. */
            user?: string | null;
            /** @description Wall-time percentiles. */
            wall_us: components["schemas"]["Percentiles"];
        };
        /** @description A function's usage over time in equal buckets. */
        UsageSeries: {
            /** @description The function. */
            function: string;
            /** @description The buckets, oldest first. */
            points: components["schemas"]["SeriesPoint"][];
            /**
             * Format: date-time
             * @description The window's start.
             */
            since: string;
            /**
             * Format: double
             * @description Each bucket's length.
             */
            step_seconds: number;
            /**
             * Format: date-time
             * @description The window's end.
             */
            until: string;
        };
        /** @description A user (never their password hash). */
        User: {
            /**
             * Format: date-time
             * @description When they were created.
             */
            created_at: string;
            /**
             * Format: date-time
             * @description When an admin disabled them (their tokens stop working and they
             *     cannot log in; their functions keep serving); null: enabled.
             */
            disabled_at: string | null;
            /** @description Their id. */
            id: string;
            /** @description Their monthly quotas. */
            quota: components["schemas"]["UserQuota"];
            /** @description What they may do. */
            role: components["schemas"]["Role"];
            /** @description Their name. */
            username: string;
        };
        /** @description Users by name. */
        UserList: {
            /** @description This page's items. */
            items: components["schemas"]["User"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /** @description `PATCH /v1/users/{name}` (admin): what is present changes. */
        UserPatch: {
            /**
             * @description Disable (every token of theirs fails at once, logins are refused)
             *     or enable them again.
             */
            disabled?: boolean | null;
            quota?: null | components["schemas"]["QuotaPatch"];
            role?: null | components["schemas"]["Role"];
        };
        /** @description A user's monthly quotas; null: none. */
        UserQuota: {
            /**
             * Format: int64
             * @description Calls per calendar month (UTC).
             */
            calls_per_month: number | null;
            /**
             * Format: int64
             * @description Fuel per calendar month (UTC).
             */
            fuel_per_month: number | null;
        };
        /** @description An uploaded module. */
        Version: {
            /** @description Its guest ABI. */
            abi: components["schemas"]["Abi"];
            /**
             * Format: date-time
             * @description When it was uploaded.
             */
            created_at: string;
            /** @description Its id. */
            id: string;
            /** @description What it imports, as `module::name`. */
            imports: string[];
            /**
             * Format: int32
             * @description 1, 2, ... per function.
             */
            number: number;
            /** @description The module's sha256, hex. */
            sha256: string;
            /**
             * Format: int64
             * @description The module's size.
             */
            size_bytes: number;
        };
        /** @description Versions, newest first. */
        VersionList: {
            /** @description This page's items. */
            items: components["schemas"]["Version"][];
            /** @description The cursor of the next page (`?after=`); null on the last. */
            next: string | null;
        };
        /**
         * @description Who may call a function.
         * @enum {string}
         */
        Visibility: "public" | "private";
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    get_v1_audit: {
        parameters: {
            query?: {
                /** @description Only entries of this actor (username). */
                actor?: string;
                /** @description Only this action. */
                action?: string;
                /** @description Only this target. */
                target?: string;
                /** @description RFC 3339 lower bound (inclusive). */
                since?: string;
                /** @description RFC 3339 upper bound (exclusive). */
                until?: string;
                /** @description Most entries in the page. */
                limit?: number;
                /** @description The `next` cursor of the previous page. */
                after?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_auth_providers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SignInMethods"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_auth_session: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Token"];
                };
            };
            /** @description No live session */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_auth_session: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_auth_sso_exchange: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoopbackExchange"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Token"];
                };
            };
            /** @description A wrong, used-up or old code, or the wrong secret */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_auth_sso__provider__callback: {
        parameters: {
            query?: {
                code?: string;
                state?: string;
                error?: string;
                error_description?: string;
            };
            header?: never;
            path: {
                provider: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Signed in: to `return_to` */
            303: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description `sso_state`, or the ID token refused (`id_token_*`) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_auth_sso__provider__device: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                provider: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeviceStart"];
                };
            };
            /** @description The provider has no device flow here */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_auth_sso__provider__device_token: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                provider: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DevicePoll"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Token"];
                };
            };
            /** @description `authorization_pending`, `slow_down` or `expired_token` */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_auth_sso__provider__login: {
        parameters: {
            query?: {
                /** @description Where to go afterwards: a path of this site (default `/`), or a loopback URL `http://127.0.0.1:PORT/...` that receives `?token=` (olinctl) */
                return_to?: string;
            };
            header?: never;
            path: {
                provider: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description To the provider's sign-in page */
            303: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_executions__id_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Execution"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions: {
        parameters: {
            query?: {
                /** @description Most items in the page. */
                limit?: number;
                /** @description The `next` cursor of the previous page. */
                after?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FunctionList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["NewFunction"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Function"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Function"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_functions__name_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    patch_v1_functions__name_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["FunctionPatch"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Function"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__deployments: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeploymentList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions__name__deployments: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["NewDeployment"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Deployment"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__env: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["EnvList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    put_v1_functions__name__env__var_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
                var: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SetEnv"];
            };
        };
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_functions__name__env__var_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
                var: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__executions: {
        parameters: {
            query?: {
                /** @description Only this outcome (`OK`, `GUEST_ERROR`, `TIMEOUT`, ...). */
                outcome?: string;
                /** @description RFC 3339 lower bound of `started_at` (inclusive). */
                since?: string;
                /** @description RFC 3339 upper bound of `started_at` (exclusive). */
                until?: string;
                /** @description Most executions in the page. */
                limit?: number;
                /** @description The `next` cursor of the previous page. */
                after?: string;
            };
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ExecutionList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions__name__invoke: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["TryIt"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TryItResult"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__keys: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InvokeKeyList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions__name__keys: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["NewKey"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["InvokeKey"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_functions__name__keys__id_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions__name__rollback: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["Rollback"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Deployment"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__usage: {
        parameters: {
            query?: {
                /** @description Calls that started at or after this time. */
                since?: string;
                /** @description Calls that started before this time. */
                until?: string;
            };
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Usage"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__usage_series: {
        parameters: {
            query?: {
                /** @description Start of the window (default: 24 hours before its end). */
                since?: string;
                /** @description End of the window (default: now). */
                until?: string;
                /** @description Number of equal buckets. */
                buckets?: number;
            };
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UsageSeries"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_functions__name__versions: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["VersionList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_functions__name__versions: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/wasm": string;
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Version"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_me: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Me"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    put_v1_me_password: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PasswordChange"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Revoked"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_openapi_json: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The OpenAPI document */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": unknown;
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_tokens: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_tokens: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["Login"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Token"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_tokens__id_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_usage: {
        parameters: {
            query?: {
                /** @description Calls that started at or after this time. */
                since?: string;
                /** @description Calls that started before this time. */
                until?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Usage"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_users: {
        parameters: {
            query?: {
                /** @description Most items in the page. */
                limit?: number;
                /** @description The `next` cursor of the previous page. */
                after?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    post_v1_users: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["NewUser"];
            };
        };
        responses: {
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_users__name_: {
        parameters: {
            query?: {
                /**
                 * @description Delete the user's functions with them (refused with 409 otherwise
                 *     when they own any).
                 */
                cascade?: boolean;
            };
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description they own functions, or are the last admin */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    patch_v1_users__name_: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["UserPatch"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["User"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    put_v1_users__name__password: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PasswordReset"];
            };
        };
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Revoked"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    get_v1_users__name__tokens: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenList"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    delete_v1_users__name__tokens: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Revoked"];
                };
            };
            /** @description error */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
}
