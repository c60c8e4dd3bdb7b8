//! A deterministic 500-table schema of seven business domains (sales, inventory, HR, finance, logistics,
//! marketing, support), and questions about it with the tables each one needs.
//!
//! Each domain has hand-written core tables (`domains.rs`) and generated variants of them (`sales_orders_history`,
//! `inv_products_daily_stats`, `hr_employees_archive`...) that share their words: the distractors a real schema
//! has. A quarter of the tables have no comments at all, and commented tables leave some columns without one.

mod domains;
mod questions;

use std::collections::{HashMap, HashSet};

use querygpt_common::schema::{ColumnInfo, DbSchema, ForeignKey, TableInfo, TableKind};

use domains::{Core, DOMAINS};
pub use questions::{QUESTIONS, Question};

/// Variants of a core table: name suffix, Chinese suffix, columns after the reference to the core table (`=`
/// copies the core table's columns; archives and staging tables have no foreign keys).
const VARIANTS: &[(&str, &str, &str)] = &[
    (
        "history",
        "历史",
        "changed_at timestamp 变更时间; old_status varchar(16) 原状态; new_status varchar(16) 新状态; \
      operator_id>hr_employees",
    ),
    (
        "audit_log",
        "审计日志",
        "action varchar(16) 操作类型; operator_id>hr_employees; op_time timestamp 操作时间; \
      detail text 详情",
    ),
    ("daily_stats", "日统计", "stat_date date 统计日期; record_count int 记录数; total_amount decimal(14,2) 总金额"),
    (
        "monthly_summary",
        "月度汇总",
        "stat_month char(7) 月份; record_count int 记录数; \
      total_amount decimal(14,2) 总金额",
    ),
    ("archive", "归档", "=; archived_at timestamp 归档时间"),
    (
        "attachments",
        "附件",
        "file_name varchar(200) 文件名; file_url varchar(255) 文件地址; uploaded_at timestamp 上传时间",
    ),
    ("notes", "备注", "note text 备注内容; author_id>hr_employees"),
    ("tags", "标签", "tag varchar(50) 标签"),
    ("snapshots", "快照", "snapshot_date date 快照日期; ="),
    ("import_staging", "导入临时表", "=; batch_no varchar(32) 导入批次; import_error varchar(200) 错误信息"),
    (
        "approvals",
        "审批",
        "approver_id>hr_employees; approved_at timestamp 审批时间; result varchar(16) 审批结果; \
      opinion varchar(200) 审批意见",
    ),
    ("ext", "扩展信息", "ext_key varchar(50) 扩展字段; ext_value varchar(500) 扩展值"),
];

/// Housekeeping columns, each on some of the snake_case core tables: words every table shares.
const HOUSEKEEPING: &[&str] = &[
    "tenant_id bigint 租户ID",
    "remark varchar(500) 备注",
    "version int 版本号",
    "created_by bigint 创建人",
    "updated_by bigint 更新人",
    "is_deleted tinyint 是否删除",
    "sort_order int 排序",
    "ext_json text 扩展信息",
    "source_system varchar(20) 来源系统",
];

/// The metric grid of wide tables (`*`): every measure over every period.
const MEASURES: &[(&str, &str)] = &[
    ("order_count", "下单次数"),
    ("order_amount", "下单金额"),
    ("visit_count", "访问次数"),
    ("refund_amount", "退款金额"),
    ("coupon_count", "用券次数"),
    ("avg_price", "平均单价"),
    ("active_days", "活跃天数"),
    ("return_rate", "退货率"),
    ("click_count", "点击次数"),
    ("review_score", "评价得分"),
    ("cart_adds", "加购次数"),
    ("share_count", "分享次数"),
];
const PERIODS: &[(&str, &str)] =
    &[("7d", "近7天"), ("30d", "近30天"), ("90d", "近90天"), ("365d", "近一年"), ("all", "累计")];

/// SplitMix64: a few lines, the same numbers on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// The 500 tables, sorted by name like a schema read from a database.
pub fn schema() -> DbSchema {
    let domains: Vec<Vec<Core>> = DOMAINS.iter().map(|d| d.cores().collect()).collect();
    let cores: HashMap<&str, &Core> = domains.iter().flatten().map(|c| (c.name, c)).collect();
    let mut rng = Rng(0x5EED_0500);
    let mut tables = Vec::new();
    for (domain, core_tables) in DOMAINS.iter().zip(&domains) {
        let start = tables.len();
        for core in core_tables {
            let mut table = new_table(core.name, core.zh, &mut rng);
            add_columns(&mut table, core.columns, None, &cores, &mut rng);
            let audit = if core.name.contains('_') {
                let mut audit = String::from("created_at timestamp 创建时间; updated_at timestamp 更新时间");
                for column in HOUSEKEEPING.iter().filter(|_| rng.chance(0.6)) {
                    audit.push_str("; ");
                    audit.push_str(column);
                }
                audit
            } else {
                "createdAt timestamp 创建时间; updatedAt timestamp 更新时间".into()
            };
            add_columns(&mut table, &audit, None, &cores, &mut rng);
            tables.push(table);
        }
        // Variants of the snake_case tables, none twice, until the domain has its size.
        let snake: Vec<usize> = (start..tables.len()).filter(|&i| tables[i].name.contains('_')).collect();
        let mut made = HashSet::new();
        while tables.len() - start < domain.size {
            let (core, variant) = (snake[rng.below(snake.len())], rng.below(VARIANTS.len()));
            if made.insert((core, variant)) {
                let table = new_variant(&tables[core], VARIANTS[variant], &cores, &mut rng);
                tables.push(table);
            }
        }
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    DbSchema { tables }
}

/// A table without columns; three in four have Chinese comments.
fn new_table(name: &str, zh: &str, rng: &mut Rng) -> TableInfo {
    let commented = rng.chance(0.75);
    TableInfo {
        name: name.into(),
        kind: TableKind::Table,
        comment: commented.then(|| zh.into()),
        columns: vec![column("id", "bigint", None, true)],
        foreign_keys: Vec::new(),
        row_count: None,
    }
}

fn new_variant(
    core: &TableInfo,
    (suffix, zh_suffix, spec): (&str, &str, &str),
    cores: &HashMap<&str, &Core>,
    rng: &mut Rng,
) -> TableInfo {
    let info = cores[core.name.as_str()];
    let mut table = new_table(&format!("{}_{suffix}", core.name), &format!("{}{zh_suffix}", info.zh), rng);
    let copy = spec.contains('=');
    if !copy {
        add_columns(&mut table, &format!("{}>{}", info.key, info.name), None, cores, rng);
    }
    add_columns(&mut table, spec, copy.then_some(core), cores, rng);
    if !copy {
        add_columns(&mut table, "created_at timestamp 创建时间", None, cores, rng);
    }
    table
}

fn column(name: &str, data_type: &str, comment: Option<String>, primary: bool) -> ColumnInfo {
    ColumnInfo { name: name.into(), data_type: data_type.into(), nullable: !primary, primary, comment }
}

/// Adds the columns of `spec` (see `domains.rs`; `=` copies those of `copy` but its primary key).
fn add_columns(
    table: &mut TableInfo,
    spec: &str,
    copy: Option<&TableInfo>,
    cores: &HashMap<&str, &Core>,
    rng: &mut Rng,
) {
    let commented = table.comment.is_some();
    let comment = |zh: String, rng: &mut Rng| (commented && rng.chance(0.85)).then_some(zh);
    for item in spec.split(';').map(str::trim).filter(|item| !item.is_empty()) {
        if item == "=" {
            let copied = copy.expect("a copy of a core table").columns.iter().filter(|c| !c.primary);
            table.columns.extend(copied.cloned());
        } else if item == "*" {
            for (measure, measure_zh) in MEASURES {
                for (period, period_zh) in PERIODS {
                    let zh = comment(format!("{period_zh}{measure_zh}"), rng);
                    table.columns.push(column(&format!("{measure}_{period}"), "decimal(14,2)", zh, false));
                }
            }
        } else if let Some((name, target)) = item.split_once('>') {
            let target = cores.get(target).unwrap_or_else(|| panic!("{}: no table {target}", table.name));
            let name = if name.is_empty() { target.key } else { name };
            let zh = comment(format!("{}ID", target.zh), rng);
            table.columns.push(column(name, "bigint", zh, false));
            table.foreign_keys.push(ForeignKey {
                columns: vec![name.into()],
                referenced_table: target.name.into(),
                referenced_columns: vec!["id".into()],
            });
        } else {
            let mut parts = item.splitn(3, ' ');
            let (name, data_type) = (parts.next().unwrap(), parts.next().expect("a column type"));
            let zh = parts.next().and_then(|zh| comment(zh.into(), rng));
            table.columns.push(column(name, data_type, zh, false));
        }
    }
}
