//! A question against a real 500-table database (the ranking crate's generated schema, created in PostgreSQL
//! with its Chinese comments): the prompt carries the tables the question needs within `worker.schema_budget`,
//! and the `result` event lists the tables that were sent.

use crate::support::TestApp;
use crate::support::databases::{connection_body, fresh_postgres_database};
use querygpt_common::schema::DbSchema;
use querygpt_ranking::fixtures::{self, QUESTIONS};
use querygpt_testkit::Reply;
use reqwest::StatusCode;

/// `worker.schema_budget`'s default.
const BUDGET: usize = 24 * 1024;

/// The DDL of `schema`: tables with their primary keys, and their comments (no foreign keys: ranking here rests on
/// names and comments alone).
fn ddl(schema: &DbSchema) -> String {
    let quote = |s: &str| s.replace('\'', "''");
    let mut sql = String::new();
    for table in &schema.tables {
        let columns: Vec<String> = table
            .columns
            .iter()
            // The fixture speaks MySQL; PostgreSQL has no tinyint.
            .map(|c| {
                let data_type = if c.data_type == "tinyint" { "smallint" } else { &c.data_type };
                format!("\"{}\" {data_type}{}", c.name, if c.primary { " PRIMARY KEY" } else { "" })
            })
            .collect();
        sql.push_str(&format!("CREATE TABLE \"{}\" ({});\n", table.name, columns.join(", ")));
        if let Some(comment) = &table.comment {
            sql.push_str(&format!("COMMENT ON TABLE \"{}\" IS '{}';\n", table.name, quote(comment)));
        }
        for column in &table.columns {
            if let Some(comment) = &column.comment {
                sql.push_str(&format!(
                    "COMMENT ON COLUMN \"{}\".\"{}\" IS '{}';\n",
                    table.name,
                    column.name,
                    quote(comment)
                ));
            }
        }
    }
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_table_database_sends_the_tables_a_question_needs() {
    use sqlx::Connection;
    let schema = fixtures::schema();
    assert_eq!(schema.tables.len(), 500);
    let url = fresh_postgres_database().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect target");
    sqlx::raw_sql(sqlx::AssertSqlSafe(ddl(&schema))).execute(&mut conn).await.expect("create the 500 tables");

    let app = TestApp::embedded().await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    let (status, created) =
        app.post("/connections", &session.access_token, connection_body("big", "postgresql", &url)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let connection_id = created["data"]["id"].as_str().unwrap().to_owned();
    app.llm.set_default(Reply::text("```sql\nSELECT 1 AS one\n```"));

    let english = QUESTIONS.iter().find(|q| q.text == "How many orders did each customer place last month?").unwrap();
    let chinese = QUESTIONS.iter().find(|q| q.text == "每个部门有多少在职员工").unwrap();
    for question in [english, chinese] {
        let events =
            app.ask(&session, &[("query", question.text), ("connection_id", &connection_id)]).await.collect().await;
        let result = events.iter().find(|e| e.event == "result").unwrap_or_else(|| panic!("{events:?}"));
        let sent: Vec<&str> = result.data["tables"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert!(sent.len() < 500, "the schema was cut down: {} tables sent", sent.len());
        let prompt = app.llm.requests().last().unwrap().prompt_text();
        for needed in question.tables {
            assert!(sent.contains(needed), "{}: {needed} not in {sent:?}", question.text);
            assert!(prompt.contains(&format!("TABLE {needed} (")), "{}: {needed} not in the prompt", question.text);
        }
        let schema_lines: usize = prompt.lines().filter(|l| l.starts_with("TABLE ")).map(|l| l.len() + 1).sum();
        assert!(schema_lines <= BUDGET, "{}: {schema_lines} bytes of schema", question.text);
        assert!(prompt.contains("员工") || question.text.is_ascii(), "Chinese comments reach the prompt");
    }
    app.stop().await;
}
