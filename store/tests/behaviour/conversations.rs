//! Conversations: saving exchanges, reading messages, the list with its search, deleting and favourites.

use crate::{Harness, Raw, at, contents, exchange, new_connection, user};
use querygpt_store::{ConversationPage, ConversationQuery, Role, StoreError};
use uuid::Uuid;

pub(crate) async fn save_exchange_creates_conversation_and_is_idempotent(h: Harness) {
    let u = user(&h.store, "leo@example.com").await;
    let conn = h.store.create_connection(u.id, new_connection("c", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    let ex = exchange(u.id, conversation_id, conn.id, 1, at(0));
    assert!(h.store.save_exchange(ex.clone()).await.unwrap());
    let detail = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(detail.conversation.user_id, u.id);
    assert_eq!(detail.conversation.title, "question 1");
    assert_eq!(detail.conversation.model.as_deref(), Some("gpt-4o"));
    assert_eq!(detail.conversation.connection_id, Some(conn.id));
    assert!(!detail.conversation.is_favorite);
    assert_eq!(detail.messages, [ex.user_message.clone(), ex.assistant_message.clone()]);

    // A redelivered job saves the same exchange again: nothing changes.
    assert!(!h.store.save_exchange(ex.clone()).await.unwrap());
    assert_eq!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap(), detail);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(h.store.message(u.id, ex.assistant_message.id).await.unwrap(), Some(ex.assistant_message));
}

pub(crate) async fn save_exchange_appends_in_order_and_bumps_updated_at(h: Harness) {
    let u = user(&h.store, "mia@example.com").await;
    let conversation_id = Uuid::now_v7();
    // Every message has the same timestamp: the order of insertion decides.
    let first = exchange(u.id, conversation_id, Uuid::now_v7(), 1, at(0));
    assert!(h.store.save_exchange(first).await.unwrap());
    let before = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = exchange(u.id, conversation_id, Uuid::now_v7(), 2, at(0));
    assert!(h.store.save_exchange(second).await.unwrap());
    let after = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(contents(&after.messages), ["question 1", "answer 1", "question 2", "answer 2"]);
    assert_eq!(after.conversation.title, "question 1", "the title is set when the conversation is created");
    assert_eq!(after.conversation.created_at, before.conversation.created_at);
    assert!(
        after.conversation.updated_at > before.conversation.updated_at,
        "{:?} > {:?}",
        after.conversation.updated_at,
        before.conversation.updated_at
    );
}

pub(crate) async fn concurrent_redelivery_saves_once(h: Harness) {
    let u = user(&h.store, "nina@example.com").await;
    let conversation_id = Uuid::now_v7();
    let ex = exchange(u.id, conversation_id, Uuid::now_v7(), 1, at(0));
    let saves = (0..4).map(|_| {
        let (store, ex) = (h.store.clone(), ex.clone());
        tokio::spawn(async move { store.save_exchange(ex).await })
    });
    let results: Vec<bool> = futures::future::join_all(saves).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(results.iter().filter(|saved| **saved).count(), 1, "{results:?}");
    assert_eq!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap().messages.len(), 2);
}

pub(crate) async fn save_exchange_refuses_another_users_conversation(h: Harness) {
    let owner = user(&h.store, "olga@example.com").await;
    let intruder = user(&h.store, "pete@example.com").await;
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(owner.id, conversation_id, Uuid::now_v7(), 1, at(0))).await.unwrap();
    let foreign = exchange(intruder.id, conversation_id, Uuid::now_v7(), 2, at(1));
    let result = h.store.save_exchange(foreign.clone()).await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    assert!(h.store.message(owner.id, foreign.user_message.id).await.unwrap().is_none());
    assert!(h.store.message(intruder.id, foreign.user_message.id).await.unwrap().is_none());
    assert_eq!(h.store.conversation_detail(owner.id, conversation_id).await.unwrap().unwrap().messages.len(), 2);
}

pub(crate) async fn save_exchange_is_atomic(h: Harness) {
    let u = user(&h.store, "quinn@example.com").await;
    let taken = exchange(u.id, Uuid::now_v7(), Uuid::now_v7(), 1, at(0));
    h.store.save_exchange(taken.clone()).await.unwrap();

    // The assistant message's id is already used in another conversation: the whole exchange is refused, and
    // neither the new conversation nor its user message is left behind.
    let conversation_id = Uuid::now_v7();
    let mut clash = exchange(u.id, conversation_id, Uuid::now_v7(), 2, at(1));
    clash.assistant_message.id = taken.assistant_message.id;
    let result = h.store.save_exchange(clash.clone()).await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert!(h.store.conversation_detail(u.id, conversation_id).await.unwrap().is_none());
    assert!(h.store.message(u.id, clash.user_message.id).await.unwrap().is_none());
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM conversations").await, 1);
}

pub(crate) async fn save_exchange_of_an_unknown_user_is_not_found(h: Harness) {
    let nobody = Uuid::now_v7();
    let result = h.store.save_exchange(exchange(nobody, Uuid::now_v7(), Uuid::now_v7(), 1, at(0))).await;
    assert!(matches!(&result, Err(StoreError::NotFound(what)) if what.starts_with("user")), "{result:?}");
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 0);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM conversations").await, 0);
}

pub(crate) async fn save_exchange_drops_a_foreign_connection(h: Harness) {
    let u = user(&h.store, "rita@example.com").await;
    let other = user(&h.store, "sam@example.com").await;
    let theirs = h.store.create_connection(other.id, new_connection("theirs", false)).await.unwrap();
    let conversation_id = Uuid::now_v7();
    h.store.save_exchange(exchange(u.id, conversation_id, theirs.id, 1, at(0))).await.unwrap();
    let detail = h.store.conversation_detail(u.id, conversation_id).await.unwrap().unwrap();
    assert_eq!(detail.conversation.connection_id, None);
}

pub(crate) async fn conversations_and_messages_are_scoped_by_user(h: Harness) {
    let owner = user(&h.store, "tina@example.com").await;
    let other = user(&h.store, "umar@example.com").await;
    let conversation_id = Uuid::now_v7();
    let ex = exchange(owner.id, conversation_id, Uuid::now_v7(), 1, at(0));
    h.store.save_exchange(ex.clone()).await.unwrap();
    assert!(h.store.conversation_detail(other.id, conversation_id).await.unwrap().is_none());
    assert!(h.store.recent_messages(other.id, conversation_id, 10).await.unwrap().is_empty());
    assert!(h.store.message(other.id, ex.user_message.id).await.unwrap().is_none());
    assert!(h.store.conversation_detail(owner.id, Uuid::now_v7()).await.unwrap().is_none());
    let own = h.store.message(owner.id, ex.user_message.id).await.unwrap().unwrap();
    assert_eq!((own.role, own.metadata), (Role::User, None));
}

pub(crate) async fn recent_messages_limit_and_order(h: Harness) {
    let u = user(&h.store, "vera@example.com").await;
    let conversation_id = Uuid::now_v7();
    for n in 1..=3 {
        let ex = exchange(u.id, conversation_id, Uuid::now_v7(), n, at(i64::from(n) * 1_000_000));
        h.store.save_exchange(ex).await.unwrap();
    }
    let last3 = h.store.recent_messages(u.id, conversation_id, 3).await.unwrap();
    assert_eq!(contents(&last3), ["answer 2", "question 3", "answer 3"]);
    let all = h.store.recent_messages(u.id, conversation_id, 100).await.unwrap();
    assert_eq!(contents(&all), ["question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3"]);
    assert_eq!(all[5].metadata.as_ref().unwrap().visualization.as_ref().unwrap()["type"], "table");
    assert_eq!(all[4].created_at, at(3_000_000));
    assert!(h.store.recent_messages(u.id, conversation_id, 0).await.unwrap().is_empty());
    assert!(h.store.recent_messages(u.id, Uuid::now_v7(), 5).await.unwrap().is_empty());
}
// ---------------------------------------------------------------- the list and its search

/// Saves a new conversation of one exchange; returns its id.
async fn talk(h: &Harness, user_id: Uuid, title: &str, question: &str, answer: &str) -> Uuid {
    let id = Uuid::now_v7();
    let mut ex = exchange(user_id, id, Uuid::now_v7(), 1, at(0));
    ex.title = title.to_owned();
    ex.user_message.content = question.to_owned();
    ex.assistant_message.content = answer.to_owned();
    assert!(h.store.save_exchange(ex).await.unwrap());
    id
}

fn query(limit: u32, offset: u64) -> ConversationQuery {
    ConversationQuery { limit, offset, favorites_only: false, search: None }
}

async fn list(h: &Harness, user_id: Uuid, query: ConversationQuery) -> ConversationPage {
    h.store.list_conversations(user_id, &query).await.unwrap()
}

fn titles(page: &ConversationPage) -> Vec<&str> {
    page.items.iter().map(|s| s.conversation.title.as_str()).collect()
}

/// The titles of every conversation of the user that the search finds, newest first.
async fn found(h: &Harness, user_id: Uuid, text: &str) -> Vec<String> {
    let page = list(h, user_id, ConversationQuery { search: Some(text.to_owned()), ..query(100, 0) }).await;
    assert_eq!(page.total, page.items.len() as u64, "{text}");
    titles(&page).into_iter().map(str::to_owned).collect()
}

pub(crate) async fn list_order_paging_and_total(h: Harness) {
    let u = user(&h.store, "eve@example.com").await;
    let other = user(&h.store, "finn@example.com").await;
    talk(&h, other.id, "not mine", "q", "a").await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        ids.push(talk(&h, u.id, &format!("t{n}"), "q", "a").await);
    }
    let first = list(&h, u.id, query(2, 0)).await;
    assert_eq!((titles(&first), first.total), (vec!["t5", "t4"], 5));
    assert_eq!(titles(&list(&h, u.id, query(2, 2)).await), ["t3", "t2"]);
    assert_eq!(titles(&list(&h, u.id, query(2, 4)).await), ["t1"]);
    let beyond = list(&h, u.id, query(2, 10)).await;
    assert_eq!((beyond.items.len(), beyond.total), (0, 5));
    let empty = list(&h, u.id, query(0, 0)).await;
    assert_eq!((empty.items.len(), empty.total), (0, 5));

    // A new exchange moves its conversation to the front and counts its messages.
    let mut again = exchange(u.id, ids[1], Uuid::now_v7(), 2, at(1));
    again.title = "ignored".to_owned();
    h.store.save_exchange(again).await.unwrap();
    let page = list(&h, u.id, query(10, 0)).await;
    assert_eq!(titles(&page), ["t2", "t5", "t4", "t3", "t1"]);
    let counts: Vec<u64> = page.items.iter().map(|s| s.message_count).collect();
    assert_eq!(counts, [4, 2, 2, 2, 2]);
    assert_eq!(page.items[0].conversation, h.store.conversation(u.id, ids[1]).await.unwrap().unwrap());

    // Equal activity times: the newest id first.
    h.raw.run("UPDATE conversations SET updated_at = (SELECT MIN(updated_at) FROM conversations)").await;
    let mut newest_first = ids.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    let listed: Vec<Uuid> = list(&h, u.id, query(10, 0)).await.items.iter().map(|s| s.conversation.id).collect();
    assert_eq!(listed, newest_first);
}

pub(crate) async fn list_favorites_only(h: Harness) {
    let u = user(&h.store, "gus@example.com").await;
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(talk(&h, u.id, &format!("t{n}"), "q", "a").await);
    }
    assert!(h.store.toggle_favorite(u.id, ids[0]).await.unwrap());
    assert!(h.store.toggle_favorite(u.id, ids[2]).await.unwrap());
    let favorites = ConversationQuery { favorites_only: true, ..query(10, 0) };
    let page = list(&h, u.id, favorites.clone()).await;
    assert_eq!((titles(&page), page.total), (vec!["t3", "t1"], 2));
    assert!(page.items.iter().all(|s| s.conversation.is_favorite));
    let searched = list(&h, u.id, ConversationQuery { search: Some("t1".to_owned()), ..favorites }).await;
    assert_eq!((titles(&searched), searched.total), (vec!["t1"], 1));
    // Favouring is not activity: the order of all conversations is unchanged.
    assert_eq!(titles(&list(&h, u.id, query(10, 0)).await), ["t4", "t3", "t2", "t1"]);
}

pub(crate) async fn search_english_is_case_insensitive(h: Harness) {
    let u = user(&h.store, "hal@example.com").await;
    talk(&h, u.id, "Monthly revenue by region", "q", "a").await;
    talk(&h, u.id, "untitled", "Show me the REVENUE of 2024", "done").await;
    talk(&h, u.id, "orders", "how many orders", "The Revenue grew").await;
    talk(&h, u.id, "users", "count users", "42 users").await;
    let all_three = ["orders", "untitled", "Monthly revenue by region"];
    assert_eq!(found(&h, u.id, "REVENUE").await, all_three);
    assert_eq!(found(&h, u.id, "revenue").await, all_three);
    assert_eq!(found(&h, u.id, "Revenue By").await, ["Monthly revenue by region"]);
    assert!(found(&h, u.id, "xyzzy").await.is_empty());
    // Too short for the trigram index: found all the same.
    assert_eq!(found(&h, u.id, "42").await, ["users"]);
    assert_eq!(found(&h, u.id, "ME").await, ["untitled"]);
    assert_eq!(found(&h, u.id, "z").await, Vec::<String>::new());
    // Paged like the plain list.
    let page = list(&h, u.id, ConversationQuery { search: Some("revenue".to_owned()), ..query(1, 1) }).await;
    assert_eq!((titles(&page), page.total), (vec!["untitled"], 3));
    // Past the end, indexed or scanned: no item, the total all the same.
    for (text, total) in [("revenue", 3), ("ME", 1)] {
        let past_the_end = list(&h, u.id, ConversationQuery { search: Some(text.to_owned()), ..query(10, 5) }).await;
        assert_eq!((past_the_end.items.len(), past_the_end.total), (0, total), "{text}");
    }
}

pub(crate) async fn search_chinese_substrings(h: Harness) {
    let u = user(&h.store, "ivy@example.com").await;
    talk(&h, u.id, "每个品类的销售额", "查询每个品类的销售额", "按品类汇总").await;
    talk(&h, u.id, "订单统计", "上个月的订单数量", "根据查询结果，销售额最高的是华东").await;
    talk(&h, u.id, "用户分布", "各地区的客户分布", "共有 5 个地区").await;
    let both = ["订单统计", "每个品类的销售额"];
    assert_eq!(found(&h, u.id, "销售").await, both);
    assert_eq!(found(&h, u.id, "销").await, both);
    assert_eq!(found(&h, u.id, "销售额").await, both);
    assert_eq!(found(&h, u.id, "品类的销").await, ["每个品类的销售额"]);
    assert_eq!(found(&h, u.id, "客户分布").await, ["用户分布"]);
    assert_eq!(found(&h, u.id, "5 个").await, ["用户分布"]);
    assert_eq!(found(&h, u.id, "分布").await, ["用户分布"]);
    assert!(found(&h, u.id, "华东地区").await.is_empty());
}

pub(crate) async fn search_is_literal(h: Harness) {
    let u = user(&h.store, "jon@example.com").await;
    talk(&h, u.id, "100% done", "a_b", r#"path C:\temp, "quoted" and 'single'"#).await;
    talk(&h, u.id, "1000 done", "axb", "path C:temp, quoted and single").await;
    let literal = ["100% done"];
    for text in ["%", "0%", "100%", "_", "a_b", r"\", r"C:\t", r#"""#, r#""quoted""#, "'", "'single'"] {
        assert_eq!(found(&h, u.id, text).await, literal, "{text}");
    }
    assert!(found(&h, u.id, "%%%").await.is_empty());
    assert!(found(&h, u.id, "a%b").await.is_empty());
    assert_eq!(found(&h, u.id, "").await.len(), 2, "an empty text filters nothing");
}

pub(crate) async fn search_is_scoped_by_user(h: Harness) {
    let u = user(&h.store, "kim@example.com").await;
    let other = user(&h.store, "lou@example.com").await;
    talk(&h, u.id, "mine", "revenue", "销售").await;
    talk(&h, other.id, "revenue", "revenue", "销售").await;
    assert_eq!(found(&h, u.id, "revenue").await, ["mine"]);
    assert_eq!(found(&h, u.id, "销售").await, ["mine"]);
    assert_eq!(found(&h, other.id, "mine").await, Vec::<String>::new());
}

pub(crate) async fn delete_conversation_removes_messages_and_hits(h: Harness) {
    let u = user(&h.store, "max@example.com").await;
    let gone = talk(&h, u.id, "revenue report", "revenue question", "revenue answer").await;
    let kept = talk(&h, u.id, "revenue again", "q", "a").await;
    h.store.delete_conversation(u.id, gone).await.unwrap();
    assert!(h.store.conversation(u.id, gone).await.unwrap().is_none());
    assert!(h.store.conversation(u.id, kept).await.unwrap().is_some());
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM messages").await, 2);
    assert_eq!(found(&h, u.id, "revenue").await, ["revenue again"]);
    assert_eq!(found(&h, u.id, "report").await, Vec::<String>::new());
    assert_eq!(found(&h, u.id, "question").await, Vec::<String>::new());
    if let Raw::Sqlite(_) = h.raw {
        // The title and both messages of the kept conversation; nothing of the deleted one.
        assert_eq!(h.raw.count("SELECT COUNT(*) FROM conversation_search").await, 3);
    }
    let again = h.store.delete_conversation(u.id, gone).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))), "{again:?}");
}

pub(crate) async fn toggle_favorite_flips(h: Harness) {
    let u = user(&h.store, "ned@example.com").await;
    let id = talk(&h, u.id, "t", "q", "a").await;
    let before = h.store.conversation(u.id, id).await.unwrap().unwrap();
    assert!(h.store.toggle_favorite(u.id, id).await.unwrap());
    assert!(h.store.conversation(u.id, id).await.unwrap().unwrap().is_favorite);
    assert!(!h.store.toggle_favorite(u.id, id).await.unwrap());

    // Concurrent toggles each flip the flag: an even number of them leaves it as it was.
    let toggles = (0..6).map(|_| {
        let store = h.store.clone();
        tokio::spawn(async move { store.toggle_favorite(u.id, id).await })
    });
    let states: Vec<bool> = futures::future::join_all(toggles).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(states.iter().filter(|on| **on).count(), 3, "{states:?}");
    let after = h.store.conversation(u.id, id).await.unwrap().unwrap();
    assert!(!after.is_favorite);
    assert_eq!(after.updated_at, before.updated_at, "favouring is not activity");
}

/// SQLite only: deleting conversations leaves gaps in their rowids, which VACUUM must not close (titles' search
/// entries are addressed by them).
pub(crate) async fn search_survives_vacuum(h: Harness) {
    let u = user(&h.store, "ola@example.com").await;
    let mut ids = Vec::new();
    for title in ["alpha title", "bravo title", "charlie title", "delta title"] {
        ids.push(talk(&h, u.id, title, "q", "a").await);
    }
    h.store.delete_conversation(u.id, ids[0]).await.unwrap();
    h.store.delete_conversation(u.id, ids[2]).await.unwrap();
    h.raw.run("VACUUM").await;
    assert_eq!(found(&h, u.id, "title").await, ["delta title", "bravo title"]);
    assert_eq!(found(&h, u.id, "delta").await, ["delta title"]);
    h.store.delete_conversation(u.id, ids[3]).await.unwrap();
    assert_eq!(found(&h, u.id, "title").await, ["bravo title"]);
    assert_eq!(h.raw.count("SELECT COUNT(*) FROM conversation_search").await, 3);
}
