//! The tree walk: every node of the query subset of the AST is matched exhaustively (no wildcard arms, every
//! struct destructured), so a construct the validator does not know cannot slip through, and a sqlparser upgrade
//! that adds one fails to compile here instead.

use sqlparser::ast::{
    AccessExpr, Array, BinaryOperator, CaseWhen, Cte, Distinct, Expr, Fetch, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, GroupByWithModifier, HavingBound,
    Ident, Interval, Join, JoinConstraint, JoinOperator, JsonPathElem, LimitClause, ListAggOnOverflow, MemberOf,
    NamedWindowDefinition, NamedWindowExpr, ObjectName, ObjectNamePart, Offset, OrderBy, OrderByExpr, OrderByKind,
    OrderBySort, Query, Select, SelectFlavor, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetQuantifier,
    Subscript, TableFactor, TableFunctionArgs, TableSample, TableSampleKind, TableWithJoins, Values,
    WildcardAdditionalOptions, WindowFrame, WindowFrameBound, WindowSpec, WindowType, With,
};

use crate::sql::MAX_DEPTH;
use crate::{Dialect, Policy, Rejection, Rule, names};

type Check = Result<(), Rejection>;

/// Walks a root query; returns the tables it reads.
pub(crate) fn check_query(query: &Query, dialect: Dialect, policy: &Policy) -> Result<Vec<String>, Rejection> {
    let mut walker = Walker { dialect, policy, depth: 0, ctes: Vec::new(), tables: Vec::new() };
    walker.query(query)?;
    Ok(walker.tables)
}

fn unsupported(what: &str) -> Rejection {
    Rejection::new(Rule::UnsupportedSyntax, format!("{what} is not supported"))
}

struct Walker<'a> {
    dialect: Dialect,
    policy: &'a Policy,
    /// Current nesting; every recursive step goes through [`Walker::enter`].
    depth: usize,
    /// Names (normalized) of the CTEs in scope at the current point of the walk.
    ctes: Vec<String>,
    tables: Vec<String>,
}

impl Walker<'_> {
    fn enter(&mut self) -> Check {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Rejection::new(
                Rule::TooDeep,
                format!("the statement nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// An identifier as the database resolves it: PostgreSQL folds unquoted names to ASCII lowercase, SQLite
    /// ignores ASCII case, MySQL is compared exactly (table names are case-sensitive on most servers).
    fn normalize(&self, ident: &Ident) -> String {
        match self.dialect {
            Dialect::Postgresql if ident.quote_style.is_none() => ident.value.to_ascii_lowercase(),
            Dialect::Postgresql | Dialect::Mysql => ident.value.clone(),
            Dialect::Sqlite => ident.value.to_ascii_lowercase(),
        }
    }

    fn entry_matches(&self, entry: &str, reference: &[String]) -> bool {
        let mut parts = entry.split('.');
        let same = reference.iter().all(|r| {
            parts.next().is_some_and(|e| match self.dialect {
                Dialect::Sqlite => e.eq_ignore_ascii_case(r),
                Dialect::Postgresql | Dialect::Mysql => e == r,
            })
        });
        same && parts.next().is_none()
    }

    fn query(&mut self, query: &Query) -> Check {
        self.enter()?;
        let Query {
            with,
            body,
            order_by,
            limit_clause,
            fetch,
            locks,
            for_clause,
            settings,
            format_clause,
            pipe_operators,
        } = query;
        if !locks.is_empty() {
            return Err(Rejection::new(
                Rule::LockingClause,
                "FOR UPDATE / FOR SHARE takes row locks; a read-only query may not lock rows",
            ));
        }
        if for_clause.is_some() {
            return Err(unsupported("FOR XML / FOR JSON"));
        }
        if settings.is_some() {
            return Err(unsupported("SETTINGS"));
        }
        if format_clause.is_some() {
            return Err(unsupported("FORMAT"));
        }
        if !pipe_operators.is_empty() {
            return Err(unsupported("pipe syntax (|>)"));
        }
        let scope = self.ctes.len();
        if let Some(with) = with {
            self.with(with)?;
        }
        self.set_expr(body)?;
        if let Some(order_by) = order_by {
            self.order_by(order_by)?;
        }
        if let Some(limit_clause) = limit_clause {
            self.limit_clause(limit_clause)?;
        }
        if let Some(Fetch { with_ties: _, percent: _, quantity }) = fetch
            && let Some(quantity) = quantity
        {
            self.expr(quantity)?;
        }
        self.ctes.truncate(scope);
        self.depth -= 1;
        Ok(())
    }

    /// CTEs come into scope one by one: a non-recursive CTE is visible to the CTEs after it and to the body, not
    /// to itself (there the name means a real table, which must be checked).
    fn with(&mut self, with: &With) -> Check {
        let With { with_token: _, recursive, cte_tables } = with;
        for cte in cte_tables {
            let Cte { alias, query, from, materialized: _, closing_paren_token: _ } = cte;
            if from.is_some() {
                return Err(unsupported("CTE ... FROM"));
            }
            let name = self.normalize(&alias.name);
            if *recursive {
                self.ctes.push(name);
                self.query(query)?;
            } else {
                self.query(query)?;
                self.ctes.push(name);
            }
        }
        Ok(())
    }

    fn set_expr(&mut self, body: &SetExpr) -> Check {
        self.enter()?;
        match body {
            SetExpr::Select(select) => self.select(select)?,
            SetExpr::Query(query) => self.query(query)?,
            SetExpr::SetOperation { left, op: _, set_quantifier, right } => {
                match set_quantifier {
                    SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None => {}
                    SetQuantifier::ByName | SetQuantifier::AllByName | SetQuantifier::DistinctByName => {
                        return Err(unsupported("UNION BY NAME"));
                    }
                }
                self.set_expr(left)?;
                self.set_expr(right)?;
            }
            SetExpr::Values(Values { explicit_row: _, value_keyword: _, rows }) => {
                for row in rows {
                    self.exprs(&row.content)?;
                }
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                return Err(Rejection::new(
                    Rule::DataModifyingCte,
                    "INSERT/UPDATE/DELETE/MERGE inside a query changes data",
                ));
            }
            SetExpr::Table(_) => return Err(unsupported("the TABLE command")),
        }
        self.depth -= 1;
        Ok(())
    }

    fn select(&mut self, select: &Select) -> Check {
        let Select {
            select_token: _,
            optimizer_hints,
            distinct,
            select_modifiers: _,
            top,
            top_before_distinct: _,
            projection,
            exclude,
            into,
            from,
            lateral_views,
            prewhere,
            selection,
            connect_by,
            group_by,
            cluster_by,
            distribute_by,
            sort_by,
            having,
            named_window,
            qualify,
            window_before_qualify: _,
            value_table_mode,
            flavor,
        } = select;
        if into.is_some() {
            return Err(Rejection::new(Rule::SelectInto, "SELECT ... INTO creates a table or assigns variables"));
        }
        if !optimizer_hints.is_empty() {
            return Err(Rejection::new(
                Rule::OptimizerHint,
                "optimizer hints (/*+ ... */) can change session settings and limits",
            ));
        }
        if top.is_some() {
            return Err(unsupported("TOP"));
        }
        if exclude.is_some() {
            return Err(unsupported("EXCLUDE"));
        }
        if !lateral_views.is_empty() {
            return Err(unsupported("LATERAL VIEW"));
        }
        if prewhere.is_some() {
            return Err(unsupported("PREWHERE"));
        }
        if !connect_by.is_empty() {
            return Err(unsupported("CONNECT BY"));
        }
        if !cluster_by.is_empty() || !distribute_by.is_empty() || !sort_by.is_empty() {
            return Err(unsupported("CLUSTER/DISTRIBUTE/SORT BY"));
        }
        if qualify.is_some() {
            return Err(unsupported("QUALIFY"));
        }
        if value_table_mode.is_some() {
            return Err(unsupported("SELECT AS STRUCT/VALUE"));
        }
        match flavor {
            SelectFlavor::Standard => {}
            SelectFlavor::FromFirst | SelectFlavor::FromFirstNoSelect => return Err(unsupported("FROM-first SELECT")),
        }
        match distinct {
            None | Some(Distinct::All) | Some(Distinct::Distinct) => {}
            Some(Distinct::On(exprs)) => self.exprs(exprs)?,
        }
        for item in projection {
            self.select_item(item)?;
        }
        for table in from {
            self.table_with_joins(table)?;
        }
        if let Some(selection) = selection {
            self.expr(selection)?;
        }
        self.group_by(group_by)?;
        if let Some(having) = having {
            self.expr(having)?;
        }
        for NamedWindowDefinition(_, window) in named_window {
            match window {
                NamedWindowExpr::NamedWindow(_) => {}
                NamedWindowExpr::WindowSpec(spec) => self.window_spec(spec)?,
            }
        }
        Ok(())
    }

    fn select_item(&mut self, item: &SelectItem) -> Check {
        match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, alias: _ } => self.expr(expr),
            SelectItem::ExprWithAliases { .. } => Err(unsupported("multiple aliases for one expression")),
            SelectItem::QualifiedWildcard(kind, options) => {
                match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(_) => {}
                    SelectItemQualifiedWildcardKind::Expr(expr) => self.expr(expr)?,
                }
                self.wildcard_options(options)
            }
            SelectItem::Wildcard(options) => self.wildcard_options(options),
        }
    }

    fn wildcard_options(&mut self, options: &WildcardAdditionalOptions) -> Check {
        let WildcardAdditionalOptions {
            wildcard_token: _,
            opt_ilike,
            opt_exclude,
            opt_except,
            opt_replace,
            opt_rename,
            opt_alias,
        } = options;
        if opt_ilike.is_some()
            || opt_exclude.is_some()
            || opt_except.is_some()
            || opt_replace.is_some()
            || opt_rename.is_some()
            || opt_alias.is_some()
        {
            return Err(unsupported("wildcard modifiers (EXCLUDE, EXCEPT, REPLACE, RENAME, ILIKE)"));
        }
        Ok(())
    }

    fn group_by(&mut self, group_by: &GroupByExpr) -> Check {
        match group_by {
            GroupByExpr::All(_) => Err(unsupported("GROUP BY ALL")),
            GroupByExpr::Expressions(exprs, modifiers) => {
                self.exprs(exprs)?;
                for modifier in modifiers {
                    match modifier {
                        GroupByWithModifier::Rollup | GroupByWithModifier::Cube => {}
                        GroupByWithModifier::Totals => return Err(unsupported("WITH TOTALS")),
                        GroupByWithModifier::GroupingSets(expr) => self.expr(expr)?,
                    }
                }
                Ok(())
            }
        }
    }

    fn order_by(&mut self, order_by: &OrderBy) -> Check {
        let OrderBy { kind, interpolate } = order_by;
        if interpolate.is_some() {
            return Err(unsupported("INTERPOLATE"));
        }
        match kind {
            OrderByKind::All(_) => Err(unsupported("ORDER BY ALL")),
            OrderByKind::Expressions(exprs) => exprs.iter().try_for_each(|e| self.order_by_expr(e)),
        }
    }

    fn order_by_expr(&mut self, order_by: &OrderByExpr) -> Check {
        let OrderByExpr { expr, options, with_fill } = order_by;
        if with_fill.is_some() {
            return Err(unsupported("WITH FILL"));
        }
        if let Some(OrderBySort::Using(_)) = options.sort {
            return Err(unsupported("ORDER BY ... USING <operator>"));
        }
        self.expr(expr)
    }

    fn limit_clause(&mut self, limit_clause: &LimitClause) -> Check {
        match limit_clause {
            LimitClause::LimitOffset { limit, offset, limit_by } => {
                if !limit_by.is_empty() {
                    return Err(unsupported("LIMIT ... BY"));
                }
                if let Some(limit) = limit {
                    self.expr(limit)?;
                }
                if let Some(Offset { value, rows: _ }) = offset {
                    self.expr(value)?;
                }
                Ok(())
            }
            LimitClause::OffsetCommaLimit { offset, limit } => {
                self.expr(offset)?;
                self.expr(limit)
            }
        }
    }

    fn table_with_joins(&mut self, table: &TableWithJoins) -> Check {
        let TableWithJoins { relation, joins } = table;
        self.table_factor(relation)?;
        for Join { relation, global, join_operator } in joins {
            if *global {
                return Err(unsupported("GLOBAL JOIN"));
            }
            self.table_factor(relation)?;
            self.join_operator(join_operator)?;
        }
        Ok(())
    }

    fn join_operator(&mut self, operator: &JoinOperator) -> Check {
        match operator {
            JoinOperator::Join(constraint)
            | JoinOperator::Inner(constraint)
            | JoinOperator::Left(constraint)
            | JoinOperator::LeftOuter(constraint)
            | JoinOperator::Right(constraint)
            | JoinOperator::RightOuter(constraint)
            | JoinOperator::FullOuter(constraint)
            | JoinOperator::CrossJoin(constraint)
            | JoinOperator::StraightJoin(constraint) => match constraint {
                JoinConstraint::On(expr) => self.expr(expr),
                JoinConstraint::Using(_) | JoinConstraint::Natural | JoinConstraint::None => Ok(()),
            },
            JoinOperator::Semi(_)
            | JoinOperator::LeftSemi(_)
            | JoinOperator::RightSemi(_)
            | JoinOperator::Anti(_)
            | JoinOperator::LeftAnti(_)
            | JoinOperator::RightAnti(_)
            | JoinOperator::CrossApply
            | JoinOperator::OuterApply
            | JoinOperator::AsOf { .. }
            | JoinOperator::ArrayJoin
            | JoinOperator::LeftArrayJoin
            | JoinOperator::InnerArrayJoin => Err(unsupported("this join type")),
        }
    }

    fn table_factor(&mut self, factor: &TableFactor) -> Check {
        self.enter()?;
        match factor {
            TableFactor::Table {
                name,
                alias: _,
                args,
                with_hints,
                version,
                with_ordinality: _,
                partitions: _,
                json_path,
                sample,
                index_hints: _,
            } => {
                if !with_hints.is_empty() {
                    return Err(unsupported("table hints WITH (...)"));
                }
                if version.is_some() {
                    return Err(unsupported("time travel (FOR SYSTEM_TIME, AT, CHANGES)"));
                }
                if json_path.is_some() {
                    return Err(unsupported("JSON path on a table"));
                }
                if let Some(sample) = sample {
                    self.table_sample(sample)?;
                }
                match args {
                    // `FROM generate_series(1, 3)`: a table-valued function, checked like any call.
                    Some(TableFunctionArgs { args, settings }) => {
                        if settings.is_some() {
                            return Err(unsupported("SETTINGS on a table function"));
                        }
                        self.function_name(name)?;
                        self.function_args(args)?;
                    }
                    None => self.relation(name)?,
                }
            }
            TableFactor::Derived { lateral: _, subquery, alias: _, sample } => {
                if let Some(sample) = sample {
                    self.table_sample(sample)?;
                }
                self.query(subquery)?;
            }
            TableFactor::TableFunction { expr, alias: _ } => self.expr(expr)?,
            TableFactor::Function { lateral: _, name, args, with_ordinality: _, alias: _ } => {
                self.function_name(name)?;
                self.function_args(args)?;
            }
            TableFactor::UNNEST { alias: _, array_exprs, with_offset, with_offset_alias: _, with_ordinality: _ } => {
                if *with_offset {
                    return Err(unsupported("UNNEST ... WITH OFFSET"));
                }
                self.exprs(array_exprs)?;
            }
            TableFactor::JsonTable { json_expr, json_path: _, columns: _, alias: _ } => self.expr(json_expr)?,
            TableFactor::NestedJoin { table_with_joins, alias: _ } => self.table_with_joins(table_with_joins)?,
            TableFactor::OpenJsonTable { .. } => return Err(unsupported("OPENJSON")),
            TableFactor::Pivot { .. } | TableFactor::Unpivot { .. } | TableFactor::UnpivotExpr { .. } => {
                return Err(unsupported("PIVOT/UNPIVOT"));
            }
            TableFactor::MatchRecognize { .. } => return Err(unsupported("MATCH_RECOGNIZE")),
            TableFactor::XmlTable { .. } => return Err(unsupported("XMLTABLE")),
            TableFactor::SemanticView { .. } => return Err(unsupported("SEMANTIC_VIEW")),
        }
        self.depth -= 1;
        Ok(())
    }

    fn table_sample(&mut self, sample: &TableSampleKind) -> Check {
        let (TableSampleKind::BeforeTableAlias(sample) | TableSampleKind::AfterTableAlias(sample)) = sample;
        let TableSample { modifier: _, name: _, quantity, seed: _, bucket, offset } = sample.as_ref();
        if bucket.is_some() || offset.is_some() {
            return Err(unsupported("TABLESAMPLE BUCKET/OFFSET"));
        }
        if let Some(quantity) = quantity {
            self.expr(&quantity.value)?;
        }
        Ok(())
    }

    /// A table read: CTE references are skipped, then the catalog denylist and the allowlist apply.
    fn relation(&mut self, name: &ObjectName) -> Check {
        let mut parts = Vec::with_capacity(name.0.len());
        for part in &name.0 {
            match part {
                ObjectNamePart::Identifier(ident) => parts.push(ident),
                ObjectNamePart::Function(_) => return Err(unsupported("a function inside a table name")),
            }
        }
        let normalized: Vec<String> = parts.iter().map(|ident| self.normalize(ident)).collect();
        if let [only] = normalized.as_slice()
            && self.ctes.contains(only)
        {
            return Ok(());
        }
        let written = parts.iter().map(|ident| ident.value.as_str()).collect::<Vec<_>>().join(".");
        // Full Unicode lowercasing over-matches the catalog denylist, which is the safe direction.
        let lowered: Vec<String> = parts.iter().map(|ident| ident.value.to_lowercase()).collect();
        if names::is_denied_relation(self.dialect, &lowered) {
            return Err(Rejection::new(
                Rule::SystemCatalog,
                format!("`{written}` is a credential or server-internal catalog"),
            ));
        }
        if let Some(allowed) = &self.policy.allowed_tables
            && !allowed.iter().any(|entry| self.entry_matches(entry, &normalized))
        {
            return Err(Rejection::new(
                Rule::TableNotAllowed,
                format!("table `{written}` is not in this connection's allowed tables"),
            ));
        }
        if !self.tables.contains(&written) {
            self.tables.push(written);
        }
        Ok(())
    }

    /// Denylist first (on the lowercased last name part, so quoting and qualification cannot hide a name), then
    /// qualification (only `pg_catalog.` may prefix a call), then the dialect's allowlist.
    fn function_name(&mut self, name: &ObjectName) -> Check {
        let mut parts = Vec::with_capacity(name.0.len());
        for part in &name.0 {
            match part {
                // ASCII folding, as the databases do: a name with other letters matches no allowlist entry.
                ObjectNamePart::Identifier(ident) => parts.push(ident.value.to_ascii_lowercase()),
                ObjectNamePart::Function(_) => return Err(unsupported("a function call inside a function name")),
            }
        }
        let Some((last, qualifiers)) = parts.split_last() else {
            return Err(unsupported("a function without a name"));
        };
        if names::is_denied_function(last) {
            return Err(Rejection::new(
                Rule::DeniedFunction,
                format!(
                    "function `{last}` is denied: it can read or write server files, run other SQL, sleep, take locks or change server state"
                ),
            ));
        }
        let system_schema =
            matches!(qualifiers, [schema] if self.dialect == Dialect::Postgresql && schema == "pg_catalog");
        if !qualifiers.is_empty() && !system_schema {
            return Err(Rejection::new(
                Rule::FunctionNotAllowed,
                format!("schema-qualified function `{}` is not allowed", parts.join(".")),
            ));
        }
        if !names::is_allowed_function(self.dialect, last) {
            return Err(Rejection::new(
                Rule::FunctionNotAllowed,
                format!("function `{last}` is not on the {} allowlist", self.dialect),
            ));
        }
        Ok(())
    }

    fn function(&mut self, function: &Function) -> Check {
        let Function { name, uses_odbc_syntax: _, parameters, args, within_group, filter, null_treatment: _, over } =
            function;
        self.function_name(name)?;
        match parameters {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) | FunctionArguments::List(_) => {
                return Err(unsupported("parametric function calls"));
            }
        }
        match args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(query) => self.query(query)?,
            FunctionArguments::List(FunctionArgumentList { duplicate_treatment: _, args, clauses }) => {
                self.function_args(args)?;
                for clause in clauses {
                    self.function_clause(clause)?;
                }
            }
        }
        for order_by in within_group {
            self.order_by_expr(order_by)?;
        }
        if let Some(filter) = filter {
            self.expr(filter)?;
        }
        match over {
            None | Some(WindowType::NamedWindow(_)) => Ok(()),
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec),
        }
    }

    fn function_clause(&mut self, clause: &FunctionArgumentClause) -> Check {
        match clause {
            FunctionArgumentClause::IgnoreOrRespectNulls(_)
            | FunctionArgumentClause::Separator(_)
            | FunctionArgumentClause::JsonNullClause(_)
            | FunctionArgumentClause::JsonReturningClause(_)
            | FunctionArgumentClause::OnOverflow(ListAggOnOverflow::Error)
            | FunctionArgumentClause::OnOverflow(ListAggOnOverflow::Truncate { filler: None, with_count: _ }) => Ok(()),
            FunctionArgumentClause::OnOverflow(ListAggOnOverflow::Truncate { filler: Some(expr), with_count: _ }) => {
                self.expr(expr)
            }
            FunctionArgumentClause::Where(expr)
            | FunctionArgumentClause::Limit(expr)
            | FunctionArgumentClause::Having(HavingBound(_, expr)) => self.expr(expr),
            FunctionArgumentClause::OrderBy(order_by) => order_by.iter().try_for_each(|o| self.order_by_expr(o)),
        }
    }

    fn function_args(&mut self, args: &[FunctionArg]) -> Check {
        for arg in args {
            let value = match arg {
                FunctionArg::Named { name: _, arg, operator: _ } | FunctionArg::Unnamed(arg) => arg,
                FunctionArg::ExprNamed { name, arg, operator: _ } => {
                    self.expr(name)?;
                    arg
                }
            };
            match value {
                FunctionArgExpr::Expr(expr) => self.expr(expr)?,
                FunctionArgExpr::QualifiedWildcard(_) | FunctionArgExpr::Wildcard => {}
                FunctionArgExpr::WildcardWithOptions(options) => self.wildcard_options(options)?,
            }
        }
        Ok(())
    }

    fn window_spec(&mut self, spec: &WindowSpec) -> Check {
        let WindowSpec { window_name: _, partition_by, order_by, window_frame } = spec;
        self.exprs(partition_by)?;
        for o in order_by {
            self.order_by_expr(o)?;
        }
        if let Some(WindowFrame { units: _, start_bound, end_bound }) = window_frame {
            for bound in std::iter::once(start_bound).chain(end_bound) {
                match bound {
                    WindowFrameBound::CurrentRow
                    | WindowFrameBound::Preceding(None)
                    | WindowFrameBound::Following(None) => {}
                    WindowFrameBound::Preceding(Some(expr)) | WindowFrameBound::Following(Some(expr)) => {
                        self.expr(expr)?
                    }
                }
            }
        }
        Ok(())
    }

    fn identifier(&self, ident: &Ident) -> Check {
        if ident.quote_style.is_none() && ident.value.starts_with('@') {
            return Err(Rejection::new(
                Rule::Variable,
                format!("session and system variables such as `{}` are not allowed", ident.value),
            ));
        }
        Ok(())
    }

    fn binary_operator(&self, op: &BinaryOperator) -> Check {
        match op {
            BinaryOperator::Assignment => Err(Rejection::new(Rule::Variable, "`:=` assigns a session variable")),
            BinaryOperator::Custom(_) | BinaryOperator::PGCustomBinaryOperator(_) => {
                Err(unsupported("custom operators (OPERATOR(...))"))
            }
            // Every other operator is a built-in comparison, arithmetic, string, JSON or array operator.
            _ => Ok(()),
        }
    }

    fn exprs(&mut self, exprs: &[Expr]) -> Check {
        exprs.iter().try_for_each(|e| self.expr(e))
    }

    fn opt_expr(&mut self, expr: Option<&Expr>) -> Check {
        expr.map_or(Ok(()), |e| self.expr(e))
    }

    fn expr(&mut self, expr: &Expr) -> Check {
        self.enter()?;
        match expr {
            Expr::Identifier(ident) => self.identifier(ident)?,
            Expr::CompoundIdentifier(idents) => idents.iter().try_for_each(|i| self.identifier(i))?,
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.expr(root)?;
                for access in access_chain {
                    match access {
                        AccessExpr::Dot(expr) => self.expr(expr)?,
                        AccessExpr::Subscript(Subscript::Index { index }) => self.expr(index)?,
                        AccessExpr::Subscript(Subscript::Slice { lower_bound, upper_bound, stride }) => {
                            self.opt_expr(lower_bound.as_ref())?;
                            self.opt_expr(upper_bound.as_ref())?;
                            self.opt_expr(stride.as_ref())?;
                        }
                    }
                }
            }
            Expr::JsonAccess { value, path } => {
                self.expr(value)?;
                for element in &path.path {
                    match element {
                        JsonPathElem::Dot { key: _, quoted: _ } => {}
                        JsonPathElem::Bracket { key } | JsonPathElem::ColonBracket { key } => self.expr(key)?,
                    }
                }
            }
            Expr::IsFalse(e)
            | Expr::IsNotFalse(e)
            | Expr::IsTrue(e)
            | Expr::IsNotTrue(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::IsUnknown(e)
            | Expr::IsNotUnknown(e)
            | Expr::Nested(e)
            | Expr::UnaryOp { op: _, expr: e }
            | Expr::Cast { kind: _, expr: e, data_type: _, format: _ }
            | Expr::Extract { field: _, syntax: _, expr: e }
            | Expr::Ceil { expr: e, field: _ }
            | Expr::Floor { expr: e, field: _ }
            | Expr::Collate { expr: e, collation: _ }
            | Expr::Prefixed { prefix: _, value: e }
            | Expr::IsJson { expr: e, kind: _, unique_keys: _, negated: _ }
            | Expr::IsNormalized { expr: e, form: _, negated: _ }
            | Expr::Interval(Interval {
                value: e,
                leading_field: _,
                leading_precision: _,
                last_field: _,
                fractional_seconds_precision: _,
            }) => self.expr(e)?,
            Expr::IsDistinctFrom(a, b)
            | Expr::IsNotDistinctFrom(a, b)
            | Expr::InUnnest { expr: a, array_expr: b, negated: _ }
            | Expr::RLike { negated: _, expr: a, pattern: b, regexp: _ }
            | Expr::AtTimeZone { timestamp: a, time_zone: b }
            | Expr::Position { expr: a, r#in: b }
            | Expr::MemberOf(MemberOf { value: a, array: b }) => {
                self.expr(a)?;
                self.expr(b)?;
            }
            Expr::InList { expr, list, negated: _ } => {
                self.expr(expr)?;
                self.exprs(list)?;
            }
            Expr::InSubquery { expr, subquery, negated: _ } => {
                self.expr(expr)?;
                self.query(subquery)?;
            }
            Expr::Between { expr, negated: _, low, high } => {
                self.expr(expr)?;
                self.expr(low)?;
                self.expr(high)?;
            }
            Expr::BinaryOp { left, op, right } => {
                self.binary_operator(op)?;
                self.expr(left)?;
                self.expr(right)?;
            }
            Expr::AnyOp { left, compare_op, right, is_some: _ } | Expr::AllOp { left, compare_op, right } => {
                self.binary_operator(compare_op)?;
                self.expr(left)?;
                self.expr(right)?;
            }
            Expr::Like { negated: _, any: _, expr, pattern, escape_char }
            | Expr::ILike { negated: _, any: _, expr, pattern, escape_char }
            | Expr::SimilarTo { negated: _, expr, pattern, escape_char } => {
                self.expr(expr)?;
                self.expr(pattern)?;
                self.opt_expr(escape_char.as_deref())?;
            }
            Expr::Convert { is_try: _, expr, data_type: _, charset: _, target_before_value: _, styles } => {
                self.expr(expr)?;
                self.exprs(styles)?;
            }
            Expr::Substring { expr, substring_from, substring_for, special: _, shorthand: _ } => {
                self.expr(expr)?;
                self.opt_expr(substring_from.as_deref())?;
                self.opt_expr(substring_for.as_deref())?;
            }
            Expr::Trim { trim_where: _, trim_what, expr, trim_characters } => {
                self.expr(expr)?;
                self.opt_expr(trim_what.as_deref())?;
                if let Some(characters) = trim_characters {
                    self.exprs(characters)?;
                }
            }
            Expr::Overlay { expr, overlay_what, overlay_from, overlay_for } => {
                self.expr(expr)?;
                self.expr(overlay_what)?;
                self.expr(overlay_from)?;
                self.opt_expr(overlay_for.as_deref())?;
            }
            Expr::Value(_)
            | Expr::TypedString(_)
            | Expr::Wildcard(_)
            | Expr::QualifiedWildcard(_, _)
            | Expr::MatchAgainst { columns: _, match_value: _, opt_search_modifier: _ } => {}
            Expr::Function(function) => self.function(function)?,
            Expr::Case { case_token: _, end_token: _, operand, conditions, else_result } => {
                self.opt_expr(operand.as_deref())?;
                for CaseWhen { condition, result } in conditions {
                    self.expr(condition)?;
                    self.expr(result)?;
                }
                self.opt_expr(else_result.as_deref())?;
            }
            Expr::Exists { subquery, negated: _ } | Expr::Subquery(subquery) => self.query(subquery)?,
            Expr::GroupingSets(sets) | Expr::Cube(sets) | Expr::Rollup(sets) => {
                for set in sets {
                    self.exprs(set)?;
                }
            }
            Expr::Tuple(exprs) | Expr::Array(Array { elem: exprs, named: _ }) => self.exprs(exprs)?,
            Expr::Struct { .. } | Expr::Named { .. } | Expr::Dictionary(_) | Expr::Map(_) => {
                return Err(unsupported("STRUCT/MAP/dictionary literals"));
            }
            Expr::OuterJoin(_) => return Err(unsupported("the (+) outer join operator")),
            Expr::Prior(_) => return Err(unsupported("PRIOR")),
            Expr::Lambda(_) => return Err(unsupported("lambda functions")),
        }
        self.depth -= 1;
        Ok(())
    }
}
