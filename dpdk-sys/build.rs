//! Finds DPDK with `pkg-config`, generates bindings for the few APIs maestro uses, and
//! compiles the C shim over DPDK's `static inline` fast path.
//!
//! Linking is shared, as Debian ships DPDK: `librte_eal.so` loads every PMD (net_pcap,
//! net_ring, i40e, mlx5, ...) as a plugin from `RTE_EAL_PMD_PATH`
//! (`/usr/lib/<multiarch>/dpdk/pmds-23.0`) during `rte_eal_init`, so the drivers need no
//! link flags at all and `--as-needed` is harmless: only EAL, ethdev, mbuf and mempool
//! are linked directly, because only they are called. (A static link would have to wrap
//! every PMD archive in `--whole-archive`, since drivers register through constructors
//! that nothing references; see README.)

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What to do when DPDK cannot be found; every failure message ends with it.
const INSTALL: &str = "install DPDK 22.11's development files and pkg-config: \
    `apt-get install -y libdpdk-dev pkg-config` on Debian 12 (bookworm) or Ubuntu; \
    for a DPDK built from source, set PKG_CONFIG_PATH to its lib/<multiarch>/pkgconfig folder";

/// Stops the build with a message instead of a panic backtrace.
fn fail(message: &str) -> ! {
    eprintln!("\nerror: dpdk-sys: {message}\n");
    std::process::exit(1)
}

fn pkg_config(args: &[&str]) -> Output {
    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    match Command::new(&program).args(args).output() {
        Ok(out) => out,
        Err(e) => fail(&format!(
            "cannot run `{program}` ({e}); {INSTALL}, or set PKG_CONFIG to its path"
        )),
    }
}

/// `pkg-config <args> libdpdk` standard output, or a failure naming the package.
fn libdpdk(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("libdpdk");
    let out = pkg_config(&all);
    if !out.status.success() {
        fail(&format!(
            "pkg-config does not know libdpdk ({}); {INSTALL}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Checks the version: the bindings and the shim follow the installed headers, but the
/// safe crate is written and tested against 22.11's ABI (rte_eth_fp_ops, mbuf layout).
fn check_version() -> String {
    let version = libdpdk(&["--modversion"]);
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (22, 11) {
        fail(&format!(
            "found DPDK {version}, but maestro needs DPDK 22.11 or later (the rte_eth_fp_ops \
             fast path and the RTE_ETH_* names); {INSTALL}"
        ));
    }
    if major > 22 {
        println!(
            "cargo:warning=dpdk-sys: DPDK {version} found; maestro is tested with 22.11 \
             (the bindings follow the installed headers, so it should build)"
        );
    }
    version
}

/// Emits link directives for `pkg-config --libs libdpdk`: search paths, and the DPDK
/// libraries as shared libraries (PMDs come in as EAL plugins, see the module doc).
fn link(libs: &str) {
    for arg in libs.split_whitespace() {
        if let Some(dir) = arg.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(name) = arg.strip_prefix("-l") {
            if !name.starts_with(':') {
                println!("cargo:rustc-link-lib=dylib={name}");
            }
        }
        // `-Wl,--as-needed` and `-pthread` are what rustc does anyway.
    }
}

/// Compiles the shim with DPDK's own flags (the same -march as the libraries, see
/// `perf-anchors.md` B.6) into `libmaestro_dpdk_shim.a`.
fn compile_shim(cflags: &[String], manifest: &Path, out: &Path) {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let src = manifest.join("shim").join("shim.c");
    let obj = out.join("shim.o");
    let status = Command::new(&cc)
        .args(["-c", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror"])
        .args(cflags)
        .arg("-I")
        .arg(manifest.join("shim"))
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run the C compiler `{cc}` ({e}); install gcc (`apt-get install gcc`) \
                 or set CC"
            ))
        });
    if !status.success() {
        fail(&format!(
            "`{cc}` could not compile {} against the DPDK headers (see above); {INSTALL}",
            src.display()
        ));
    }
    let ar = env::var("AR").unwrap_or_else(|_| "ar".to_string());
    let lib = out.join("libmaestro_dpdk_shim.a");
    let _ = std::fs::remove_file(&lib);
    let status = Command::new(&ar)
        .arg("crs")
        .arg(&lib)
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run `{ar}` ({e}); install binutils")));
    if !status.success() {
        fail(&format!("`{ar}` could not archive {}", obj.display()));
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=maestro_dpdk_shim");
}

fn bindings(cflags: &[String], manifest: &Path, out: &Path) {
    let builder = bindgen::Builder::default()
        .header(manifest.join("wrapper.h").display().to_string())
        .clang_args(cflags)
        .clang_arg(format!("-I{}", manifest.display()))
        // Only what maestro calls: the bindings stay small and the build quick.
        .allowlist_function(
            "rte_eal_(init|cleanup|remote_launch|wait_lcore|process_type)|rte_strerror\
             |rte_lcore_(count|index|to_socket_id)|rte_get_(main_lcore|next_lcore|tsc_hz)\
             |rte_socket_id|rte_openlog_stream\
             |rte_eth_dev_(count_avail|info_get|configure|start|stop|close|socket_id\
             |is_valid_port|rss_reta_update|rss_reta_query|rss_hash_update\
             |rss_hash_conf_get|get_name_by_port|adjust_nb_rx_tx_desc)\
             |rte_eth_(rx|tx)_queue_setup|rte_eth_stats_(get|reset)\
             |rte_eth_promiscuous_enable|rte_eth_macaddr_get\
             |rte_pktmbuf_pool_create|rte_pktmbuf_free_bulk|rte_mempool_(free|avail_count\
             |in_use_count|lookup)|rte_mbuf_dyn_rx_timestamp_register|maestro_.*",
        )
        .allowlist_type(
            "rte_eth_conf|rte_eth_dev_info|rte_eth_rxconf|rte_eth_txconf|rte_eth_stats\
             |rte_eth_rss_conf|rte_eth_rss_reta_entry64|rte_ether_addr|rte_mbuf\
             |rte_eth_rx_mq_mode|rte_eth_tx_mq_mode|rte_proc_type_t|rte_rmt_call_main_t",
        )
        .allowlist_var(
            "maestro_.*|RTE_MAX_LCORE|RTE_MAX_ETHPORTS|RTE_ETH_RETA_GROUP_SIZE\
             |RTE_ETH_RSS_RETA_SIZE_.*|RTE_PKTMBUF_HEADROOM|RTE_MBUF_DEFAULT_DATAROOM\
             |RTE_MEMPOOL_CACHE_MAX_SIZE|RTE_ETH_NAME_MAX_LEN|RTE_ETHER_ADDR_LEN",
        )
        // The mempool is only ever handled through pointers.
        .opaque_type("rte_mempool")
        // `rte_openlog_stream` takes a libc `FILE *`, made elsewhere (open_memstream).
        .opaque_type("_IO_FILE")
        .derive_default(true)
        .generate_comments(false)
        .layout_tests(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks));
    // libclang is loaded at run time; clang-sys panics when it is missing.
    // The hook is silenced so that the message below is all the user sees.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    std::panic::set_hook(hook);
    let generated = generated.unwrap_or_else(|_| {
        fail(
            "bindgen could not load libclang: install it with `apt-get install -y \
             libclang-dev` (or set LIBCLANG_PATH to the folder holding libclang.so)",
        )
    });
    let generated = generated.unwrap_or_else(|e| {
        fail(&format!(
            "bindgen could not parse the DPDK headers ({e}); {INSTALL}"
        ))
    });
    let path = out.join("bindings.rs");
    generated
        .write_to_file(&path)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
        "CC",
        "AR",
        "LIBCLANG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));

    let version = check_version();
    let cflags: Vec<String> = libdpdk(&["--cflags"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    compile_shim(&cflags, &manifest, &out);
    link(&libdpdk(&["--libs"]));
    bindings(&cflags, &manifest, &out);
    println!("cargo:rustc-env=DPDK_SYS_VERSION={version}");
    // Dependents read these as DEP_DPDK_VERSION / DEP_DPDK_CFLAGS.
    println!("cargo:version={version}");
    println!("cargo:cflags={}", cflags.join(" "));
}
