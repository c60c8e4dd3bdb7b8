//! The ranking on a small schema with English names, Chinese comments and foreign keys.

use querygpt_common::schema::{ColumnInfo, DbSchema, ForeignKey, TableInfo, TableKind};

use crate::{SchemaIndex, fit, render};

/// `name type comment` columns (`-` for no comment); `fk` columns are `column>table`.
fn table(name: &str, comment: &str, columns: &[&str], fks: &[&str]) -> TableInfo {
    let mut cols = vec![ColumnInfo {
        name: "id".into(),
        data_type: "integer".into(),
        nullable: false,
        primary: true,
        comment: None,
    }];
    for spec in columns {
        let mut parts = spec.splitn(3, ' ');
        let (name, data_type, comment) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        cols.push(ColumnInfo {
            name: name.into(),
            data_type: data_type.into(),
            nullable: true,
            primary: false,
            comment: (comment != "-").then(|| comment.into()),
        });
    }
    let foreign_keys = fks
        .iter()
        .map(|spec| {
            let (column, target) = spec.split_once('>').unwrap();
            cols.push(ColumnInfo {
                name: column.into(),
                data_type: "integer".into(),
                nullable: true,
                primary: false,
                comment: None,
            });
            ForeignKey {
                columns: vec![column.into()],
                referenced_table: target.into(),
                referenced_columns: vec!["id".into()],
            }
        })
        .collect();
    TableInfo {
        name: name.into(),
        kind: TableKind::Table,
        comment: (!comment.is_empty()).then(|| comment.into()),
        columns: cols,
        foreign_keys,
        row_count: None,
    }
}

fn schema() -> DbSchema {
    let mut wide: Vec<String> = (0..60).map(|i| format!("attr_{i} varchar(20) 属性{i}")).collect();
    wide.insert(30, "loyalty_points integer 积分".into());
    let wide: Vec<&str> = wide.iter().map(String::as_str).collect();
    let mut tables = vec![
        table("categories", "产品类别", &["name varchar(50) 类别名称"], &[]),
        table("customer_profiles", "客户画像", &wide, &["customer_id>customers"]),
        table("customers", "客户", &["name varchar(100) 客户名称", "email varchar(100) -"], &["region_id>regions"]),
        table("departments", "部门", &["name varchar(50) 部门名称", "budget decimal(12,2) 预算"], &[]),
        table(
            "employees",
            "员工",
            &["name varchar(50) 姓名", "salary decimal(10,2) 工资", "hired_on date 入职日期"],
            &["department_id>departments"],
        ),
        table(
            "order_items",
            "订单明细",
            &["quantity integer 数量", "price decimal(10,2) 单价"],
            &["order_id>orders", "product_id>products"],
        ),
        table(
            "orders",
            "订单",
            &["order_date date 下单日期", "total_amount decimal(12,2) 订单金额"],
            &["customer_id>customers"],
        ),
        table(
            "products",
            "产品",
            &["name varchar(100) 产品名称", "list_price decimal(10,2) 标价"],
            &["category_id>categories"],
        ),
        table("regions", "地区", &["name varchar(50) 地区名称"], &[]),
        table("support_tickets", "", &["subject varchar(200) -", "status varchar(20) -"], &["customer_id>customers"]),
        table("warehouses", "仓库", &["city varchar(50) 城市"], &[]),
    ];
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    DbSchema { tables }
}

/// Room for about `n` average tables of the test schema (the wide one aside).
fn budget_for(n: usize) -> usize {
    n * 140
}

fn ranked(question: &str, context: &[&str], budget: usize) -> Vec<String> {
    let fitted = fit(&schema(), question, context, budget);
    assert!(fitted.ranked);
    fitted.tables
}

#[test]
fn the_right_table_wins_in_english_and_chinese() {
    for (question, best) in [
        ("What is the total salary of each department?", ["employees", "departments"]),
        ("每个部门的员工工资总额", ["employees", "departments"]),
        ("list the products of every category", ["products", "categories"]),
        ("每个客户的订单金额", ["orders", "customers"]),
        ("How many open support tickets are there?", ["support_tickets", "customers"]),
        ("which city is each warehouse in", ["warehouses", "warehouses"]),
    ] {
        let tables = ranked(question, &[], budget_for(3));
        assert!(best.contains(&tables[0].as_str()), "{question}: {tables:?}");
        assert!(best.iter().all(|b| tables.iter().any(|t| t == b)), "{question}: {tables:?}");
    }
}

#[test]
fn english_names_answer_chinese_questions_through_synonyms() {
    // support_tickets has no Chinese comment at all: 工单 finds it through the synonym `ticket`.
    let tables = ranked("未关闭的工单有多少", &[], budget_for(2));
    assert_eq!(tables[0], "support_tickets", "{tables:?}");
}

#[test]
fn foreign_key_neighbours_come_along() {
    // `products` shares no word with the question: only its link to the best hit brings it in, ahead of
    // `customers` (which has the most links) and everything else.
    let tables = ranked("show the order items", &[], budget_for(3));
    assert_eq!(tables, ["order_items", "orders", "products"]);
    // Orders and regions match; customers, the table that links them, is what makes the join possible.
    let tables = ranked("total order amount per region", &[], budget_for(4));
    for needed in ["orders", "regions", "customers"] {
        assert!(tables.iter().any(|t| t == needed), "{needed}: {tables:?}");
    }
}

#[test]
fn the_conversation_and_exact_names_count() {
    let tables = ranked(
        "and only for 2023?",
        &["SELECT sum(total_amount) FROM orders JOIN customers c ON c.id = customer_id"],
        budget_for(2),
    );
    let mut first_two = tables[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["customers", "orders"], "{tables:?}");
    let tables = ranked("rows of order_items", &[], budget_for(1));
    assert_eq!(tables[0], "order_items");
}

#[test]
fn the_budget_is_respected() {
    let schema = schema();
    let full = render(&schema);
    for budget in (50..full.len()).step_by(37) {
        let fitted = fit(&schema, "salary per department", &[], budget);
        assert!(fitted.ranked);
        // Over budget only when the best table alone is.
        assert!(fitted.text.len() <= budget || fitted.tables.len() == 1, "{budget}: {}", fitted.text.len());
        let names: Vec<&str> = fitted.text.lines().map(|l| l["TABLE ".len()..].split(' ').next().unwrap()).collect();
        assert_eq!(names, fitted.tables, "{budget}");
    }
}

#[test]
fn a_best_table_larger_than_the_budget_is_sent_alone() {
    let fitted = fit(&schema(), "employees", &[], 10);
    assert!(fitted.ranked);
    assert_eq!(fitted.tables, ["employees"]);
    assert!(
        fitted.text.starts_with("TABLE employees (id integer PRIMARY KEY, department_id integer, ... 3 more columns)")
    );
}

#[test]
fn wide_tables_keep_their_keys_and_best_columns() {
    let budget = 2000;
    let fitted = fit(&schema(), "loyalty points of each customer", &[], budget);
    let line =
        fitted.text.lines().find(|l| l.starts_with("TABLE customer_profiles ")).expect("the profile table is sent");
    assert!(line.len() < budget / 8, "{line}");
    for part in ["id integer PRIMARY KEY", "loyalty_points integer -- 积分", "customer_id integer", "more columns)"] {
        assert!(line.contains(part), "{part}: {line}");
    }
    // Columns not kept are counted, the rest in their declared order.
    assert!(line.find("loyalty_points").unwrap() < line.find("customer_id").unwrap());
}

#[test]
fn everything_is_sent_unranked_when_it_fits() {
    let schema = schema();
    let full = render(&schema);
    let fitted = fit(&schema, "anything", &[], full.len());
    assert!(!fitted.ranked);
    assert_eq!(fitted.text, full);
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(fitted.tables, names);
    assert!(fit(&schema, "anything", &[], full.len() - 1).ranked);
}

#[test]
fn output_is_deterministic_and_the_index_reusable() {
    let schema = schema();
    let index = SchemaIndex::new(&schema);
    for question in ["每个客户的订单金额", "salary", ""] {
        let once = fit(&schema, question, &[], budget_for(4));
        assert_eq!(once, fit(&schema, question, &[], budget_for(4)));
        assert_eq!(once, index.fit(&schema, question, &[], budget_for(4)));
    }
}

#[test]
fn empty_schema_and_empty_question() {
    let empty = fit(&DbSchema::default(), "how many orders?", &[], 0);
    assert_eq!(empty, crate::Fitted { text: String::new(), tables: Vec::new(), ranked: false });
    let fitted = fit(&schema(), "", &[], budget_for(3));
    assert!(fitted.ranked && !fitted.tables.is_empty() && fitted.text.len() <= budget_for(3));
    // With nothing to go by, the tables with the most links come first.
    assert_eq!(fitted.tables[0], "customers");
}

#[test]
#[should_panic(expected = "another schema")]
fn an_index_refuses_another_schema() {
    SchemaIndex::new(&schema()).fit(&DbSchema::default(), "q", &[], 0);
}
