// Code written against Customer.Age as `int` (tests/ui-fixtures/projects/original).
// tests/ui/rows/column_type_changed.rs compiles this same file after the YAML
// changed the column to `bigint`, and fails.
mod rows {
    cdc_runtime::include_rows!();
}

use rows::shop::Customer;

fn age_next_year(customer: &Customer) -> Option<i32> {
    customer.age.map(|age| age + 1)
}

fn main() {
    let customer = Customer {
        customer_id: 1,
        name: "Ada".to_string(),
        age: Some(36),
        ..Customer::default()
    };
    assert_eq!(age_next_year(&customer), Some(37));
}
