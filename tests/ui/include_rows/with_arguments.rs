// include_rows!() includes every row struct of OUT_DIR: it takes no sink name.
mod rows {
    cdc_runtime::include_rows!("sink_asma.directory");
}

fn main() {}
