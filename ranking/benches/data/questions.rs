//! Questions about the generated schema, as users ask them, with the tables a correct query needs.

/// One question, the conversation before it, and the tables its SQL needs.
pub struct Question {
    pub text: &'static str,
    pub context: &'static [&'static str],
    pub tables: &'static [&'static str],
}

const fn q(text: &'static str, tables: &'static [&'static str]) -> Question {
    Question { text, context: &[], tables }
}

pub const QUESTIONS: &[Question] = &[
    // English.
    q("How many orders did each customer place last month?", &["sales_orders", "sales_customers"]),
    q("Top 10 products by revenue in 2024", &["sales_order_items", "inv_products", "sales_orders"]),
    q("Current stock of each product in every warehouse", &["inv_stock_levels", "inv_products", "inv_warehouses"]),
    q("Which suppliers still have open purchase orders?", &["inv_suppliers", "inv_purchase_orders"]),
    q("Average salary by department", &["hr_salaries", "hr_employees", "hr_departments"]),
    q("List the employees hired this year with their position titles", &["hr_employees", "hr_positions"]),
    q("Total freight cost per carrier", &["lgs_shipments", "lgs_carriers"]),
    q("How many packages failed delivery, and why?", &["lgs_delivery_attempts", "lgs_packages"]),
    q("Click-through rate of each ad last week", &["mkt_ad_clicks", "mkt_ad_impressions", "mkt_ads"]),
    q("Number of coupons redeemed per campaign", &["mkt_coupon_redemptions", "mkt_coupons", "mkt_campaigns"]),
    q(
        "Average satisfaction score of the tickets handled by each agent",
        &["sup_satisfaction_surveys", "sup_tickets", "sup_agents"],
    ),
    q("Open tickets by priority", &["sup_tickets"]),
    q("Invoices that have not been fully paid yet", &["fin_invoices", "fin_receipts"]),
    q("Monthly expense claims per cost center", &["fin_expense_claims", "fin_cost_centers"]),
    q(
        "Budget usage of each cost center in the current fiscal period",
        &["fin_budgets", "fin_cost_centers", "fin_fiscal_periods"],
    ),
    q("Debit and credit totals per account (trial balance)", &["fin_journal_lines", "fin_accounts"]),
    q("Which sales reps met their targets this quarter?", &["sales_targets", "sales_reps"]),
    q("Refund amount of returns grouped by reason", &["sales_returns"]),
    q("Revenue by sales region", &["sales_orders", "sales_customers", "sales_regions"]),
    q("How many web visits came from each referrer page?", &["mktWebVisits"]),
    q("Leads converted into customers, by lead source", &["mkt_leads", "mkt_lead_sources"]),
    q("Who is on leave today and what kind of leave is it?", &["hr_leave_requests", "hr_employees", "hr_leave_types"]),
    q("Trips per driver with the total distance driven", &["lgs_trips", "lgs_drivers", "lgs_routes"]),
    q("Which product batches expire in the next 30 days?", &["inv_batches", "inv_products"]),
    q("Stocktake differences per warehouse", &["inv_stocktake_items", "inv_stocktakes", "inv_warehouses"]),
    Question {
        text: "now break it down by month",
        context: &[
            "Total freight cost per carrier",
            "SELECT c.carrier_name, SUM(s.freight_cost) FROM lgs_shipments s JOIN lgs_carriers c ON c.id = \
             s.carrier_id GROUP BY c.carrier_name",
        ],
        tables: &["lgs_shipments", "lgs_carriers"],
    },
    // Paraphrases: words the schema does not have, joins the question does not name.
    q("Which clients spent the most last year?", &["sales_orders", "sales_customers"]),
    q("Best-selling items this month", &["sales_order_items", "inv_products", "sales_orders"]),
    q("Average time to resolve a ticket, per support team", &["sup_tickets", "sup_agents", "sup_teams"]),
    q("Which vendors do we buy the most from?", &["inv_suppliers", "inv_purchase_orders"]),
    q("How many people work in each department?", &["hr_employees", "hr_departments"]),
    q("Late deliveries by carrier", &["lgs_shipments", "lgs_carriers"]),
    q("Headcount hired per month", &["hr_employees"]),
    // Chinese.
    q("每个客户的订单金额", &["sales_orders", "sales_customers"]),
    q("各仓库的库存总量", &["inv_stock_levels", "inv_warehouses"]),
    q("每个部门有多少在职员工", &["hr_employees", "hr_departments"]),
    q("每个承运商的平均运费", &["lgs_shipments", "lgs_carriers"]),
    q("上周每个广告的点击次数", &["mkt_ad_clicks", "mkt_ads"]),
    q("哪些工单超过了服务等级协议的解决时限", &["sup_tickets", "sup_sla_policies"]),
    q("各币种银行账户的余额合计", &["fin_bank_accounts", "fin_currencies"]),
    q("每个供应商的采购金额", &["inv_purchase_orders", "inv_suppliers"]),
    q("各品牌产品的销售数量", &["sales_order_items", "inv_products", "inv_brands"]),
    q("每个员工的培训通过率", &["hr_training_enrollments", "hr_employees"]),
    q("每位司机的配送成功率", &["lgs_delivery_attempts", "lgs_drivers"]),
    q("优惠券核销数量最多的营销活动", &["mkt_coupon_redemptions", "mkt_coupons", "mkt_campaigns"]),
    q("每个客服的通话总时长", &["sup_call_logs", "sup_agents"]),
    q("去年各会计期间的凭证数量", &["fin_journal_entries", "fin_fiscal_periods"]),
    q("员工的平均年龄", &["hr_employees"]),
    q("哪个城市的仓库最多", &["inv_warehouses"]),
    q("各渠道的营销投放金额", &["mkt_campaign_channels", "sales_channels"]),
    q("每个销售代表的业绩完成率", &["sales_targets", "sales_reps"]),
    Question {
        text: "只看2024年的",
        context: &[
            "每个客户的订单金额",
            "SELECT c.customer_name, SUM(o.total_amount) FROM sales_orders o JOIN sales_customers c ON c.id = \
             o.customer_id GROUP BY c.customer_name",
        ],
        tables: &["sales_orders", "sales_customers"],
    },
];
