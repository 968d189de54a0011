// Against tests/ui-fixtures/projects/retyped, Customer.Age is an `Option<i64>`:
// code written for the new type compiles (ui/rows/column_type_changed.rs shows
// that the old code does not).
mod rows {
    cdc_runtime::include_rows!();
}

fn main() {
    let customer = rows::shop::Customer {
        age: Some(i64::from(i32::MAX) + 1),
        ..Default::default()
    };
    let age: Option<i64> = customer.age;
    assert_eq!(age, Some(2_147_483_648));
}
