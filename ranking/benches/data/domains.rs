//! The hand-written core tables of seven business domains; `mod.rs` adds their variants (history, stats,
//! archives...) to reach 500 tables.
//!
//! A table is `name 中文名 key | columns`: `key` names the columns that reference it. Columns are separated by `;`:
//! `name type 中文注释` (the comment is optional), `>table` for a foreign key named after the referenced table's
//! key (`>sales_customers` is `customer_id`), `name>table` for one named otherwise, and `*` for the metric grid of
//! a wide table. Every table also gets an `id` primary key and audit columns.

/// A core table: its name, Chinese comment, the name of the columns that reference it, and its columns.
pub struct Core {
    pub name: &'static str,
    pub zh: &'static str,
    pub key: &'static str,
    pub columns: &'static str,
}

impl Core {
    fn parse(spec: &'static str) -> Core {
        let (head, columns) = spec.split_once(" | ").expect("name zh key | columns");
        let mut head = head.split(' ');
        let mut next = || head.next().expect("name zh key");
        Core { name: next(), zh: next(), key: next(), columns }
    }
}

/// A business domain: its core tables and how many tables it has with their variants.
pub struct Domain {
    pub size: usize,
    tables: &'static [&'static str],
}

impl Domain {
    pub fn cores(&self) -> impl Iterator<Item = Core> {
        self.tables.iter().map(|spec| Core::parse(spec))
    }
}

pub const DOMAINS: &[Domain] = &[
    Domain { size: 72, tables: SALES },
    Domain { size: 72, tables: INVENTORY },
    Domain { size: 71, tables: HR },
    Domain { size: 71, tables: FINANCE },
    Domain { size: 71, tables: LOGISTICS },
    Domain { size: 72, tables: MARKETING },
    Domain { size: 71, tables: SUPPORT },
];

const SALES: &[&str] = &[
    "sales_customers 客户 customer_id | customer_code varchar(32) 客户编码; customer_name varchar(100) 客户名称; \
     phone varchar(20) 联系电话; email varchar(100) 邮箱; >sales_customer_groups; >sales_regions; \
     level varchar(16) 客户等级; registered_at timestamp 注册时间",
    "sales_customer_groups 客户分组 group_id | group_name varchar(50) 分组名称; discount_rate decimal(5,2) 折扣率",
    "sales_customer_addresses 客户地址 address_id | >sales_customers; province varchar(50) 省份; \
     city varchar(50) 城市; district varchar(50) 区县; detail varchar(200) 详细地址; is_default tinyint 是否默认",
    "sales_regions 销售区域 region_id | region_name varchar(50) 区域名称; region_code varchar(16) 区域编码; \
     manager_id>hr_employees",
    "sales_channels 销售渠道 channel_id | channel_name varchar(50) 渠道名称; channel_type varchar(20) 渠道类型",
    "sales_reps 销售代表 rep_id | >hr_employees; >sales_regions; quota decimal(14,2) 销售指标; hired_on date 入职日期",
    "sales_orders 销售订单 order_id | order_no varchar(32) 订单编号; >sales_customers; >sales_reps; \
     >sales_channels; order_date date 下单日期; status varchar(16) 订单状态; total_amount decimal(12,2) 订单金额; \
     discount_amount decimal(12,2) 优惠金额; paid_at timestamp 支付时间",
    "sales_order_items 订单明细 order_item_id | >sales_orders; >inv_products; quantity int 数量; \
     unit_price decimal(12,2) 单价; discount decimal(12,2) 折扣; line_amount decimal(12,2) 行金额",
    "sales_order_payments 订单支付 payment_id | >sales_orders; pay_method varchar(20) 支付方式; \
     pay_amount decimal(12,2) 支付金额; paid_at timestamp 支付时间; transaction_no varchar(64) 交易流水号",
    "sales_returns 退货单 return_id | >sales_orders; >sales_customers; return_reason varchar(200) 退货原因; \
     refund_amount decimal(12,2) 退款金额; returned_at timestamp 退货时间; status varchar(16) 状态",
    "sales_return_items 退货明细 return_item_id | >sales_returns; >sales_order_items; >inv_products; \
     quantity int 退货数量",
    "sales_quotes 报价单 quote_id | >sales_customers; >sales_reps; quote_date date 报价日期; \
     valid_until date 有效期至; total_amount decimal(12,2) 报价金额",
    "sales_quote_items 报价明细 quote_item_id | >sales_quotes; >inv_products; quantity int 数量; \
     quoted_price decimal(12,2) 报价",
    "sales_price_lists 价目表 price_list_id | list_name varchar(50) 价目表名称; >fin_currencies; \
     valid_from date 生效日期; valid_to date 失效日期",
    "sales_price_list_items 价目表明细 price_list_item_id | >sales_price_lists; >inv_products; \
     price decimal(12,2) 价格",
    "sales_targets 销售目标 target_id | >sales_reps; period varchar(7) 期间; target_amount decimal(14,2) 目标金额; \
     achieved_amount decimal(14,2) 完成金额",
    "sales_contracts 销售合同 contract_id | >sales_customers; >sales_reps; contract_no varchar(32) 合同编号; \
     signed_on date 签订日期; contract_amount decimal(14,2) 合同金额",
    "sales_customer_profiles 客户画像 profile_id | >sales_customers; *",
];

const INVENTORY: &[&str] = &[
    "inv_products 产品 product_id | sku varchar(32) 商品编码; product_name varchar(100) 产品名称; >inv_categories; \
     >inv_brands; >inv_units; list_price decimal(12,2) 标价; cost_price decimal(12,2) 成本价; \
     status varchar(16) 状态; launched_on date 上市日期",
    "inv_categories 产品类别 category_id | category_name varchar(50) 类别名称; parent_id>inv_categories; \
     level int 层级",
    "inv_brands 品牌 brand_id | brand_name varchar(50) 品牌名称; country varchar(50) 国家",
    "inv_units 计量单位 unit_id | unit_name varchar(20) 单位名称; symbol varchar(10) 符号",
    "inv_warehouses 仓库 warehouse_id | warehouse_code varchar(16) 仓库编码; warehouse_name varchar(50) 仓库名称; \
     city varchar(50) 所在城市; capacity int 容量; manager_id>hr_employees",
    "inv_bins 库位 bin_id | >inv_warehouses; bin_code varchar(20) 库位编码; zone varchar(10) 库区",
    "inv_stock_levels 库存 stock_id | >inv_products; >inv_warehouses; on_hand int 在库数量; reserved int 预留数量; \
     safety_stock int 安全库存; updated_on date 更新日期",
    "inv_stock_movements 库存变动 movement_id | >inv_products; >inv_warehouses; \
     movement_type varchar(16) 变动类型; quantity int 数量; moved_at timestamp 变动时间; ref_no varchar(32) 关联单号",
    "inv_suppliers 供应商 supplier_id | supplier_name varchar(100) 供应商名称; contact_name varchar(50) 联系人; \
     phone varchar(20) 电话; rating int 评级; country varchar(50) 国家",
    "inv_supplier_products 供应商产品 supplier_product_id | >inv_suppliers; >inv_products; \
     supply_price decimal(12,2) 供货价; lead_days int 交货天数",
    "inv_purchase_orders 采购订单 po_id | po_no varchar(32) 采购单号; >inv_suppliers; >inv_warehouses; \
     order_date date 采购日期; expected_date date 预计到货日期; total_amount decimal(14,2) 采购金额; \
     status varchar(16) 状态",
    "inv_purchase_order_items 采购明细 po_item_id | >inv_purchase_orders; >inv_products; quantity int 采购数量; \
     unit_cost decimal(12,2) 采购单价; received_qty int 已收数量",
    "inv_goods_receipts 入库单 goods_receipt_id | >inv_purchase_orders; >inv_warehouses; \
     received_at timestamp 入库时间; receiver_id>hr_employees",
    "inv_stocktakes 盘点单 stocktake_id | >inv_warehouses; taken_on date 盘点日期; status varchar(16) 状态",
    "inv_stocktake_items 盘点明细 stocktake_item_id | >inv_stocktakes; >inv_products; book_qty int 账面数量; \
     counted_qty int 实盘数量; diff_qty int 差异数量",
    "inv_batches 批次 batch_id | >inv_products; batch_no varchar(32) 批次号; produced_on date 生产日期; \
     expires_on date 过期日期",
    "inv_product_metrics 产品指标 product_metric_id | >inv_products; *",
];

const HR: &[&str] = &[
    "hr_employees 员工 employee_id | employee_no varchar(20) 工号; full_name varchar(50) 姓名; \
     gender char(1) 性别; birth_date date 出生日期; >hr_departments; >hr_positions; manager_id>hr_employees; \
     hire_date date 入职日期; status varchar(16) 在职状态; email varchar(100) 邮箱",
    "hr_departments 部门 department_id | dept_name varchar(50) 部门名称; parent_id>hr_departments; \
     >fin_cost_centers; head_id>hr_employees",
    "hr_positions 职位 position_id | title varchar(50) 职位名称; grade varchar(10) 职级; \
     min_salary decimal(10,2) 最低薪资; max_salary decimal(10,2) 最高薪资",
    "hr_salaries 薪资 salary_id | >hr_employees; base_salary decimal(10,2) 基本工资; allowance decimal(10,2) 津贴; \
     effective_from date 生效日期",
    "hr_payroll_runs 工资发放批次 payroll_run_id | period varchar(7) 发放期间; paid_on date 发放日期; \
     total_amount decimal(14,2) 发放总额",
    "hr_payroll_items 工资明细 payroll_item_id | >hr_payroll_runs; >hr_employees; \
     gross_pay decimal(10,2) 应发工资; tax decimal(10,2) 个税; net_pay decimal(10,2) 实发工资",
    "hr_attendance 考勤记录 attendance_id | >hr_employees; work_date date 日期; check_in time 签到时间; \
     check_out time 签退时间; late_minutes int 迟到分钟",
    "hr_leave_requests 请假申请 leave_id | >hr_employees; >hr_leave_types; start_date date 开始日期; \
     end_date date 结束日期; days decimal(4,1) 天数; status varchar(16) 审批状态",
    "hr_leave_types 假期类型 leave_type_id | type_name varchar(20) 类型名称; paid tinyint 是否带薪",
    "hr_performance_reviews 绩效考核 review_id | >hr_employees; reviewer_id>hr_employees; \
     period varchar(7) 考核期间; score decimal(5,2) 考核分数; grade char(1) 等级",
    "hr_trainings 培训课程 training_id | course_name varchar(100) 课程名称; trainer varchar(50) 讲师; hours int 课时; \
     cost decimal(10,2) 费用",
    "hr_training_enrollments 培训报名 enrollment_id | >hr_trainings; >hr_employees; enrolled_on date 报名日期; \
     passed tinyint 是否通过",
    "hr_job_postings 招聘职位 posting_id | >hr_positions; >hr_departments; openings int 招聘人数; \
     posted_on date 发布日期; status varchar(16) 状态",
    "hr_candidates 候选人 candidate_id | full_name varchar(50) 姓名; phone varchar(20) 电话; \
     source varchar(20) 来源渠道; >hr_job_postings",
    "hr_interviews 面试记录 interview_id | >hr_candidates; interviewer_id>hr_employees; \
     interview_at timestamp 面试时间; result varchar(16) 面试结果",
    "hr_employment_contracts 劳动合同 employment_contract_id | >hr_employees; start_date date 合同开始; \
     end_date date 合同结束; contract_type varchar(20) 合同类型",
    "hr_benefits 福利项目 benefit_id | benefit_name varchar(50) 福利名称; monthly_cost decimal(10,2) 月成本",
    "hr_employee_benefits 员工福利 employee_benefit_id | >hr_employees; >hr_benefits; enrolled_on date 参加日期",
];

const FINANCE: &[&str] = &[
    "fin_accounts 会计科目 account_id | account_code varchar(20) 科目编码; account_name varchar(100) 科目名称; \
     account_type varchar(20) 科目类型; parent_id>fin_accounts",
    "fin_fiscal_periods 会计期间 period_id | period_name varchar(7) 期间; start_date date 开始日期; \
     end_date date 结束日期; closed tinyint 是否结账",
    "fin_journal_entries 记账凭证 entry_id | voucher_no varchar(32) 凭证号; >fin_fiscal_periods; \
     entry_date date 记账日期; description varchar(200) 摘要; created_by>hr_employees",
    "fin_journal_lines 凭证分录 line_id | >fin_journal_entries; >fin_accounts; debit decimal(14,2) 借方金额; \
     credit decimal(14,2) 贷方金额; >fin_cost_centers",
    "fin_invoices 发票 invoice_id | invoice_no varchar(32) 发票号码; >sales_customers; >sales_orders; \
     invoice_date date 开票日期; amount decimal(14,2) 发票金额; tax_amount decimal(14,2) 税额; \
     status varchar(16) 状态",
    "fin_invoice_lines 发票明细 invoice_line_id | >fin_invoices; item_name varchar(100) 项目名称; \
     amount decimal(14,2) 金额; >fin_tax_rates",
    "fin_receipts 收款单 receipt_id | >fin_invoices; >sales_customers; received_on date 收款日期; \
     amount decimal(14,2) 收款金额; >fin_bank_accounts",
    "fin_supplier_payments 供应商付款 supplier_payment_id | >inv_suppliers; >inv_purchase_orders; \
     paid_on date 付款日期; amount decimal(14,2) 付款金额; >fin_bank_accounts",
    "fin_bank_accounts 银行账户 bank_account_id | bank_name varchar(50) 开户行; account_no varchar(32) 账号; \
     >fin_currencies; balance decimal(16,2) 余额",
    "fin_bank_transactions 银行流水 bank_txn_id | >fin_bank_accounts; txn_date date 交易日期; \
     amount decimal(14,2) 交易金额; direction char(1) 收支方向; counterparty varchar(100) 对方户名",
    "fin_currencies 币种 currency_id | currency_code char(3) 币种代码; currency_name varchar(20) 币种名称",
    "fin_exchange_rates 汇率 rate_id | from_currency_id>fin_currencies; to_currency_id>fin_currencies; \
     rate decimal(12,6) 汇率; rate_date date 日期",
    "fin_tax_rates 税率 tax_rate_id | tax_name varchar(20) 税种; rate decimal(5,4) 税率",
    "fin_cost_centers 成本中心 cost_center_id | center_code varchar(16) 成本中心编码; center_name varchar(50) 名称",
    "fin_budgets 预算 budget_id | >fin_cost_centers; >fin_fiscal_periods; budget_amount decimal(14,2) 预算金额; \
     used_amount decimal(14,2) 已用金额",
    "fin_expense_claims 报销单 claim_id | >hr_employees; >fin_cost_centers; submitted_on date 提交日期; \
     total_amount decimal(12,2) 报销金额; status varchar(16) 审批状态",
    "fin_expense_items 报销明细 expense_item_id | >fin_expense_claims; expense_type varchar(20) 费用类型; \
     amount decimal(12,2) 金额; spent_on date 发生日期",
    "fin_fixed_assets 固定资产 asset_id | asset_name varchar(100) 资产名称; purchase_cost decimal(14,2) 原值; \
     acquired_on date 购置日期; >fin_cost_centers; depreciation_years int 折旧年限",
];

const LOGISTICS: &[&str] = &[
    "lgs_shipments 发货单 shipment_id | shipment_no varchar(32) 运单号; >sales_orders; >inv_warehouses; \
     >lgs_carriers; shipped_at timestamp 发货时间; delivered_at timestamp 签收时间; freight_cost decimal(10,2) 运费; \
     status varchar(16) 物流状态; ship_to_address_id>sales_customer_addresses",
    "lgs_shipment_items 发货明细 shipment_item_id | >lgs_shipments; >sales_order_items; quantity int 发货数量",
    "lgs_carriers 承运商 carrier_id | carrier_name varchar(50) 承运商名称; service_level varchar(16) 服务等级; \
     contact_phone varchar(20) 联系电话",
    "lgs_vehicles 车辆 vehicle_id | plate_no varchar(16) 车牌号; vehicle_type varchar(20) 车型; \
     capacity_kg int 载重; >lgs_carriers",
    "lgs_drivers 司机 driver_id | driver_name varchar(50) 司机姓名; license_no varchar(32) 驾照号; \
     phone varchar(20) 电话; >lgs_carriers",
    "lgs_routes 运输线路 route_id | route_name varchar(50) 线路名称; origin_city varchar(50) 起点城市; \
     dest_city varchar(50) 终点城市; distance_km int 里程",
    "lgs_hubs 转运中心 hub_id | hub_name varchar(50) 名称; city varchar(50) 城市; hub_type varchar(16) 类型",
    "lgs_route_stops 线路站点 stop_id | >lgs_routes; seq int 顺序; >lgs_hubs; planned_minutes int 计划时长",
    "lgs_trips 运输任务 trip_id | >lgs_routes; >lgs_vehicles; >lgs_drivers; departed_at timestamp 出发时间; \
     arrived_at timestamp 到达时间",
    "lgs_packages 包裹 package_id | >lgs_shipments; tracking_no varchar(32) 快递单号; weight_kg decimal(8,2) 重量; \
     volume_cm3 int 体积",
    "lgs_tracking_events 物流轨迹 event_id | >lgs_packages; event_time timestamp 时间; location varchar(100) 地点; \
     event_code varchar(16) 事件代码; description varchar(200) 描述",
    "lgs_delivery_attempts 配送记录 attempt_id | >lgs_packages; >lgs_drivers; attempted_at timestamp 配送时间; \
     success tinyint 是否成功; failure_reason varchar(100) 失败原因",
    "lgs_freight_rates 运费标准 freight_rate_id | >lgs_carriers; origin_province varchar(20) 始发省份; \
     dest_province varchar(20) 目的省份; price_per_kg decimal(8,2) 每公斤价格",
    "lgs_customs_declarations 报关单 declaration_id | >lgs_shipments; declaration_no varchar(32) 报关单号; \
     declared_value decimal(14,2) 申报价值; cleared_at timestamp 放行时间",
    "lgs_fuel_logs 加油记录 fuel_log_id | >lgs_vehicles; liters decimal(8,2) 加油量; cost decimal(10,2) 金额; \
     filled_at timestamp 时间",
];

const MARKETING: &[&str] = &[
    "mkt_campaigns 营销活动 campaign_id | campaign_name varchar(100) 活动名称; campaign_type varchar(20) 活动类型; \
     start_date date 开始日期; end_date date 结束日期; budget decimal(12,2) 活动预算; owner_id>hr_employees; \
     status varchar(16) 状态",
    "mkt_campaign_channels 活动渠道 campaign_channel_id | >mkt_campaigns; >sales_channels; \
     spend decimal(12,2) 投放金额",
    "mkt_ad_groups 广告组 ad_group_id | >mkt_campaigns; group_name varchar(100) 广告组名称; \
     daily_budget decimal(10,2) 日预算",
    "mkt_ads 广告 ad_id | >mkt_ad_groups; headline varchar(200) 标题; creative_url varchar(255) 素材地址; \
     platform varchar(20) 投放平台",
    "mkt_ad_impressions 广告曝光 impression_id | >mkt_ads; shown_at timestamp 曝光时间; device varchar(16) 设备; \
     cost decimal(8,4) 费用",
    "mkt_ad_clicks 广告点击 click_id | >mkt_ads; clicked_at timestamp 点击时间; >sales_customers; \
     >mkt_landing_pages",
    "mkt_landing_pages 落地页 landing_page_id | page_url varchar(255) 页面地址; title varchar(100) 标题",
    "mkt_coupons 优惠券 coupon_id | >mkt_campaigns; coupon_code varchar(32) 券码; face_value decimal(10,2) 面额; \
     min_spend decimal(10,2) 使用门槛; valid_until date 有效期",
    "mkt_coupon_redemptions 优惠券核销 redemption_id | >mkt_coupons; >sales_customers; >sales_orders; \
     redeemed_at timestamp 核销时间",
    "mkt_lead_sources 线索来源 lead_source_id | source_name varchar(50) 来源名称",
    "mkt_leads 销售线索 lead_id | lead_name varchar(100) 姓名; company varchar(100) 公司; >mkt_lead_sources; \
     >mkt_campaigns; score int 线索评分; converted_customer_id>sales_customers",
    "mkt_email_campaigns 邮件营销 email_campaign_id | >mkt_campaigns; subject varchar(200) 邮件主题; \
     sent_at timestamp 发送时间; recipients int 收件人数",
    "mkt_email_events 邮件事件 email_event_id | >mkt_email_campaigns; >sales_customers; \
     event_type varchar(16) 事件类型; occurred_at timestamp 时间",
    "mkt_segments 客户分群 segment_id | segment_name varchar(50) 分群名称; rule_sql text 规则",
    "mkt_segment_members 分群成员 segment_member_id | >mkt_segments; >sales_customers; \
     joined_at timestamp 加入时间",
    "mkt_promotions 促销活动 promotion_id | >mkt_campaigns; promo_name varchar(100) 促销名称; \
     discount_pct decimal(5,2) 折扣比例",
    "mkt_promotion_products 促销商品 promotion_product_id | >mkt_promotions; >inv_products; \
     promo_price decimal(10,2) 促销价",
    // A legacy system's tables, in camelCase.
    "mktWebVisits 网站访问 webVisitId | sessionKey varchar(64) 会话标识; customerId>sales_customers; \
     pageUrl varchar(255) 页面地址; referrerUrl varchar(255) 来源页面; visitTime timestamp 访问时间; \
     durationSec int 停留秒数",
    "mktSocialPosts 社交媒体帖子 socialPostId | platformName varchar(20) 平台; postUrl varchar(255) 链接; \
     likeCount int 点赞数; shareCount int 分享数; campaignId>mkt_campaigns; postedAt timestamp 发布时间",
];

const SUPPORT: &[&str] = &[
    "sup_tickets 工单 ticket_id | ticket_no varchar(20) 工单号; >sales_customers; >sup_ticket_categories; \
     >sup_agents; >sup_sla_policies; priority varchar(10) 优先级; status varchar(16) 工单状态; \
     subject varchar(200) 标题; opened_at timestamp 创建时间; resolved_at timestamp 解决时间",
    "sup_ticket_comments 工单回复 comment_id | >sup_tickets; author_type varchar(10) 回复人类型; body text 内容; \
     commented_at timestamp 回复时间",
    "sup_ticket_categories 工单分类 ticket_category_id | category_name varchar(50) 分类名称; \
     parent_id>sup_ticket_categories",
    "sup_agents 客服人员 agent_id | >hr_employees; >sup_teams; skill_level int 技能等级; max_concurrent int 最大并发",
    "sup_teams 客服组 team_id | team_name varchar(50) 组名; leader_id>hr_employees",
    "sup_sla_policies 服务等级协议 sla_id | policy_name varchar(50) 名称; first_response_hours int 首次响应时限; \
     resolve_hours int 解决时限",
    "sup_satisfaction_surveys 满意度调查 survey_id | >sup_tickets; score int 满意度评分; feedback varchar(500) 反馈; \
     answered_at timestamp 提交时间",
    "sup_knowledge_articles 知识库文章 article_id | title varchar(200) 标题; body text 正文; \
     >sup_ticket_categories; views int 浏览量; author_id>sup_agents",
    "sup_chat_sessions 在线会话 chat_session_id | >sales_customers; >sup_agents; started_at timestamp 开始时间; \
     ended_at timestamp 结束时间; channel varchar(16) 渠道",
    "sup_chat_messages 会话消息 chat_message_id | >sup_chat_sessions; sender varchar(10) 发送方; content text 内容; \
     sent_at timestamp 发送时间",
    "sup_escalations 升级记录 escalation_id | >sup_tickets; from_agent_id>sup_agents; to_team_id>sup_teams; \
     reason varchar(200) 原因; escalated_at timestamp 升级时间",
    "sup_call_logs 通话记录 call_id | >sales_customers; >sup_agents; call_start timestamp 开始时间; \
     duration_sec int 通话时长; direction varchar(8) 呼入呼出; recording_url varchar(255) 录音",
    "sup_warranty_claims 保修申请 warranty_claim_id | >sales_customers; >inv_products; >sales_orders; \
     claim_date date 申请日期; issue varchar(200) 故障描述; status varchar(16) 处理状态",
    "sup_refund_requests 退款申请 refund_id | >sup_tickets; >sales_orders; amount decimal(10,2) 退款金额; \
     approved tinyint 是否批准",
    "supAgentShifts 客服排班 agentShiftId | agentId>sup_agents; shiftDate date 日期; startTime time 开始时间; \
     endTime time 结束时间",
];
