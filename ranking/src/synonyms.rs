//! A small table of words that mean the same: the common business words of a Chinese question asked of a schema
//! with English names (and no Chinese comment on that table), and a few English synonyms. A question term found
//! on one side also searches the other, with a lower weight.
//!
//! Deliberately short: generic words of business data only. Domain vocabulary belongs in the schema's comments,
//! which the ranking reads in both languages.

/// Pairs of one-word entries: a two-character Chinese word or one English word (normalised like any text, so
/// `categories` would do as well as `category`).
pub(crate) const SYNONYMS: &[(&str, &str)] = &[
    // People and parties.
    ("客户", "customer"),
    ("顾客", "customer"),
    ("client", "customer"),
    ("会员", "member"),
    ("员工", "employee"),
    ("staff", "employee"),
    ("供应", "supplier"),
    ("vendor", "supplier"),
    ("司机", "driver"),
    ("客服", "agent"),
    // Things and documents.
    ("订单", "order"),
    ("产品", "product"),
    ("商品", "product"),
    ("品牌", "brand"),
    ("类别", "category"),
    ("品类", "category"),
    ("分类", "category"),
    ("仓库", "warehouse"),
    ("库存", "stock"),
    ("库存", "inventory"),
    ("发票", "invoice"),
    ("合同", "contract"),
    ("工单", "ticket"),
    ("广告", "ad"),
    ("优惠", "coupon"),
    ("活动", "campaign"),
    ("促销", "promotion"),
    ("渠道", "channel"),
    ("包裹", "package"),
    ("车辆", "vehicle"),
    ("部门", "department"),
    ("账户", "account"),
    ("预算", "budget"),
    ("项目", "project"),
    ("门店", "store"),
    // Events.
    ("付款", "payment"),
    ("支付", "payment"),
    ("发货", "shipment"),
    ("运单", "shipment"),
    ("退货", "return"),
    ("采购", "purchase"),
    ("销售", "sale"),
    ("sell", "sale"),
    ("sold", "sale"),
    ("点击", "click"),
    ("评价", "review"),
    ("考勤", "attendance"),
    ("请假", "leave"),
    ("培训", "training"),
    ("面试", "interview"),
    ("报销", "expense"),
    // Measures and attributes.
    ("金额", "amount"),
    ("revenue", "amount"),
    ("收入", "revenue"),
    ("价格", "price"),
    ("数量", "quantity"),
    ("工资", "salary"),
    ("薪资", "salary"),
    ("日期", "date"),
    ("状态", "status"),
    ("地区", "region"),
    ("区域", "region"),
    ("城市", "city"),
    ("国家", "country"),
    ("币种", "currency"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::{Kind, Source, for_each_term};

    #[test]
    fn every_entry_is_one_term() {
        let mut buf = String::new();
        for word in SYNONYMS.iter().flat_map(|&(a, b)| [a, b]) {
            let mut count = 0;
            for_each_term(word, Source::Question, &mut buf, |_, kind| count += usize::from(kind != Kind::Char));
            assert_eq!(count, 1, "{word} must give exactly one word or character pair");
        }
    }
}
