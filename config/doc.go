// Package config owns herald's configuration: the [Config] schema with its
// defaults, loading it from one YAML file and the environment ([Load]),
// checking it ([Config.Validate]), masking secrets ([Secret]) and printing the
// effective configuration ([Config.Print]). It performs no network I/O; the
// only files it reads are the config file and the *_file secrets it names.
// Only cmd/herald imports it: every other package takes its own settings.
//
// # Sources, in order
//
//  1. Defaults ([Default]).
//  2. The YAML file. Unknown keys, duplicate keys and values of the wrong
//     type are errors naming the key path (worker.concurrency,
//     apps.shop.wechat.app_id, rate_limits[1].burst). Relative *_file paths
//     in the file are resolved against the file's directory.
//  3. The environment. Every scalar can be overridden by HERALD_ + its key
//     path upper-cased and joined by _: HERALD_NATS_URL,
//     HERALD_WORKER_SHUTDOWN_GRACE, HERALD_RATE_LIMITS_0_PER_SECOND,
//     HERALD_APPS_SHOP_WECHAT_APP_SECRET, HERALD_APPS_SHOP_WECHAT_PUSH_TOKEN
//     (nested mappings join their keys the same way). An app that only the environment
//     names is created, under its lower-cased name. A variable set to the
//     empty string sets the value to empty (HERALD_REDIS_URL= selects the
//     in-process stores). A misspelt variable under a known section
//     (HERALD_WORKER_CONCURENCY) is an error; other HERALD_ variables, such as
//     HERALD_CONFIG, are not this package's.
//  4. *_file secrets: the file's contents, trimmed of surrounding white
//     space, become the secret. Giving both a secret and its file is an error.
//  5. [Config.Validate].
//
// # Invariants
//
// Durations are [time.Duration], written as Go durations ("30s", "5m") or in
// days ("14d"). Errors name keys and environment variables and never contain
// a secret: not a [Secret], not a URL that may carry a password. [Load]
// returns every problem it found at once.
package config
