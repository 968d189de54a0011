// The code of tests/pass/rows_column_types.rs, which compiles against rows
// generated from tests/ui-fixtures/projects/original (Customer.Age `int`),
// compiled against rows generated after the YAML changed Age to `bigint`
// (tests/ui-fixtures/projects/retyped): the old type no longer compiles.
include!("../../pass/rows_column_types.rs");
